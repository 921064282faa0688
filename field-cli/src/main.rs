//! `field`: the collector's device, and the operator's demo and benchmarks.
//! Errors from the library reach the user unchanged (they name the field and
//! the reason); anyhow only wraps them with what the command was doing.

mod bench;
mod center;
mod cli;
mod demo;
mod device;
mod export;
mod findings_csv;
mod loopback;
mod output;
mod simulate;
mod sync;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    output::set_lang(field_i18n::Lang::parse(&args.lang).unwrap_or_default());
    let json = args.json;
    if let Err(e) = run(args) {
        let text = format!("{e:#}");
        if json {
            // A script asked for JSON: the error is JSON too.
            eprintln!("{}", serde_json::json!({ "error": text }));
        } else {
            eprintln!("{}{}", output::t("cli-error"), output::printable(&text));
        }
        std::process::exit(1);
    }
}

fn run(args: cli::Cli) -> anyhow::Result<()> {
    use cli::Command;
    let out = output::Output::new(args.json);
    field_core::sync::http::set_client_tls(field_core::sync::http::ClientTls {
        ca_file: args.ca_file.clone(),
        allow_plain_http: args.allow_http
            || std::env::var("FIELD_ALLOW_HTTP").is_ok_and(|v| v == "1" || v == "true"),
    });
    match args.command {
        Command::Init { collector } => device::init(&args.home, &collector, &out),
        Command::Grid(cmd) => device::grid(&args.home, cmd, &out),
        Command::Track(cmd) => device::track(&args.home, cmd, &out),
        Command::Shift { edge, at, lon, lat } => {
            device::shift(&args.home, edge, at, lon, lat, &out)
        }
        Command::Case(cmd) => device::case(&args.home, cmd, &out),
        Command::Digest => device::digest(&args.home, &out),
        Command::Catalog(cmd) => device::catalog(&args.home, cmd, &out),
        Command::Changes(cmd) => device::changes(&args.home, cmd, &out),
        Command::Enroll { server, code, name } => {
            sync::enroll(&args.home, &server, &code, name, &out)
        }
        Command::Sync => sync::sync(&args.home, &out),
        Command::Status { retention_days } => sync::status(&args.home, retention_days, &out),
        Command::Prune {
            retention_days,
            dry_run,
        } => sync::prune(&args.home, retention_days, dry_run, &out),
        Command::Center(mut c) => {
            c.lang = args.lang.clone();
            center::run(&args.home, c, &out)
        }
        Command::Task(cmd) => device::task(&args.home, cmd, &out),
        Command::Survey(cli::SurveyCmd::List) => device::surveys(&args.home, &out),
        Command::Demo {
            keep,
            serve,
            no_serve,
        } => {
            use std::io::IsTerminal;
            let serve = serve || (!no_serve && !out.is_json() && std::io::stdout().is_terminal());
            demo::run(keep, serve, &out)
        }
        Command::Bench(cmd) => bench::run(cmd, &out),
    }
}
