//! `field center …`: what center staff do, over the server's HTTP API.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use field_core::sync::http::HttpTransport;
use serde_json::{Value, json};

use crate::cli::ConfigCmd;
use crate::cli::{
    CenterArgs, CenterCaseCmd, CenterCmd, CenterImportCmd, CenterSurveyCmd, CenterTaskCmd, CertCmd,
    ChannelCmd, CollectorCmd, DeviceCmd, FindingCmd, TokenCmd, TrainingCmd, UserCmd, ViolationCmd,
};
use crate::output::{Output, table};

/// Server and token: flags/env first, else the device home's enrolment.
fn connect(home: &Path, args: &CenterArgs) -> Result<HttpTransport> {
    let enrolled = crate::device::open(home)
        .ok()
        .and_then(|s| s.sync_settings().ok().flatten());
    let server = args
        .server
        .clone()
        .or_else(|| enrolled.as_ref().map(|e| e.server.clone()))
        .ok_or_else(|| anyhow!("no server: give --server URL (or FIELD_SERVER)"))?;
    let token = args
        .token
        .clone()
        .or_else(|| enrolled.map(|e| e.token))
        .ok_or_else(|| {
            anyhow!("no token: give --token T (or FIELD_TOKEN), e.g. the server's admin.token")
        })?;
    let mut t = HttpTransport::new(&server, Some(token.trim().to_string()))?;
    let lang = field_i18n::Lang::parse(&args.lang).unwrap_or_default();
    t.language = Some(lang.tag().to_string());
    Ok(t)
}

/// Fetches a workbook from `path` and writes it to `file` atomically.
fn save_xlsx(t: &mut HttpTransport, path: &str, file: &Path, out: &Output) -> Result<()> {
    let bytes = t.get_bytes(path)?;
    crate::device::write_atomically(file, &bytes)?;
    out.show(&json!({ "file": file, "bytes": bytes.len() }), |_| {
        format!("{} bytes written to {}", bytes.len(), file.display())
    })
}

fn cell_list(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn users_table(users: &Value) -> String {
    let rows = users
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| {
                    let devices = u["devices"]
                        .as_array()
                        .map(|d| {
                            d.iter()
                                .map(|d| {
                                    format!(
                                        "{}{}",
                                        d["actor"].as_str().unwrap_or_default(),
                                        if d["revoked"].as_bool() == Some(true) {
                                            " (revoked)"
                                        } else {
                                            ""
                                        }
                                    )
                                })
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default();
                    vec![
                        u["name"].as_str().unwrap_or_default().to_string(),
                        u["role"].as_str().unwrap_or_default().to_string(),
                        u["company"].as_str().unwrap_or_default().to_string(),
                        cell_list(&u["cells"]),
                        devices,
                        if u["disabled"].as_bool() == Some(true) {
                            "disabled".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    table(
        &["NAME", "ROLE", "COMPANY", "CELLS", "DEVICES", "STATE"],
        &rows,
    )
}

fn certification_text(r: &Value) -> String {
    let state = if r["candidacy_ended"].as_bool() == Some(true) {
        "candidacy ended (two failed attempts)".to_string()
    } else {
        match (r["certified_on"].as_str(), r["valid_until"].as_str()) {
            (Some(from), Some(to)) => format!("certified on {from}, valid until {to}"),
            _ => "not certified".to_string(),
        }
    };
    format!(
        "{}: {state}; {} attempt(s)",
        r["collector"].as_str().unwrap_or_default(),
        r["attempts"].as_array().map(|a| a.len()).unwrap_or(0)
    )
}

fn add_user(
    t: &mut HttpTransport,
    name: String,
    role: &str,
    company: Option<String>,
    cells: Vec<String>,
    from: Option<String>,
    out: &Output,
) -> Result<()> {
    let mut body = json!({ "name": name, "role": role, "company": company, "cells": cells });
    if let Some(from) = from {
        body["from"] = json!(from);
    }
    let r: Value = t.call("POST", "/v1/center/users", Some(&body))?;
    out.show(&r, |r| {
        format!(
            "{} added as {}; enrolment code {} (one-time, expires {})\non the device: field enroll --server URL --code {}",
            r["user"]["name"].as_str().unwrap_or_default(),
            r["user"]["role"].as_str().unwrap_or_default(),
            r["enrolment_code"].as_str().unwrap_or_default(),
            r["code_expires_at"].as_str().unwrap_or_default(),
            r["enrolment_code"].as_str().unwrap_or_default()
        )
    })
}

pub fn run(home: &Path, args: CenterArgs, out: &Output) -> Result<()> {
    let mut t = connect(home, &args)?;
    match args.command {
        CenterCmd::Collector(CollectorCmd::Add {
            name,
            company,
            cells,
            from,
        }) => add_user(&mut t, name, "collector", company, cells, from, out),
        CenterCmd::User(UserCmd::Add {
            name,
            role,
            company,
            cells,
        }) => add_user(&mut t, name, &role, company, cells, None, out),
        CenterCmd::Collector(CollectorCmd::Code { name_or_id }) => {
            let r: Value = t.call::<(), _>(
                "POST",
                &format!("/v1/center/users/{}/codes", enc(&name_or_id)),
                None,
            )?;
            out.show(&r, |r| {
                format!(
                    "enrolment code for {}: {}",
                    r["user"]["name"].as_str().unwrap_or_default(),
                    r["enrolment_code"].as_str().unwrap_or_default()
                )
            })
        }
        CenterCmd::Collector(CollectorCmd::Assign { name, cells, from }) => {
            let r: Value = t.call(
                "POST",
                "/v1/center/assignments",
                Some(&json!({ "collector": name, "cells": cells, "from": from })),
            )?;
            out.show(&r, |r| {
                let rows = r
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                vec![
                                    x[0].as_str().unwrap_or_default().to_string(),
                                    cell_list(&x[1]),
                                ]
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                table(&["FROM", "CELLS"], &rows)
            })
        }
        CenterCmd::Collector(CollectorCmd::List) => {
            let users: Value = t.call::<(), _>("GET", "/v1/center/users?role=collector", None)?;
            out.show(&users, users_table)
        }
        CenterCmd::User(UserCmd::List { role }) => {
            let path = match &role {
                Some(r) => format!("/v1/center/users?role={}", enc(r)),
                None => "/v1/center/users".to_string(),
            };
            let users: Value = t.call::<(), _>("GET", &path, None)?;
            out.show(&users, users_table)
        }
        CenterCmd::User(UserCmd::Disable { name_or_id }) => {
            let path = format!("/v1/center/users/{}/disable", enc(&name_or_id));
            let r: Value = t.call::<(), _>("POST", &path, None)?;
            out.show(&r, |r| {
                format!(
                    "{} disabled: tokens, sessions and unused codes no longer work",
                    r["name"].as_str().unwrap_or_default()
                )
            })
        }
        CenterCmd::User(UserCmd::Enable { name_or_id }) => {
            let path = format!("/v1/center/users/{}/enable", enc(&name_or_id));
            let r: Value = t.call::<(), _>("POST", &path, None)?;
            out.show(&r, |r| {
                format!("{} enabled", r["name"].as_str().unwrap_or_default())
            })
        }
        CenterCmd::User(UserCmd::RevokeCodes { name_or_id, code }) => {
            let path = format!("/v1/center/users/{}/codes/revoke", enc(&name_or_id));
            let r: Value = t.call("POST", &path, Some(&json!({ "code": code })))?;
            out.show(&r, |r| {
                format!("{} unused code(s) of {name_or_id} revoked", r["revoked"])
            })
        }
        CenterCmd::Violation(ViolationCmd::Record {
            collector,
            kind,
            at,
            cases,
            note,
        }) => {
            let body = json!({ "collector": collector, "kind": kind, "at": at, "cases": cases, "note": note });
            let r: Value = t.call("POST", "/v1/center/violations", Some(&body))?;
            out.show(&r, |r| {
                format!(
                    "violation {} recorded against {}",
                    r["id"].as_str().unwrap_or_default(),
                    r["collector"].as_str().unwrap_or_default()
                )
            })
        }
        CenterCmd::Violation(ViolationCmd::Revoke { id, reason }) => {
            let path = format!("/v1/center/violations/{}/revoke", enc(&id));
            let r: Value = t.call("POST", &path, Some(&json!({ "reason": reason })))?;
            out.show(&r, |_| format!("violation {id} revoked"))
        }
        CenterCmd::Violation(ViolationCmd::List { collector }) => {
            let path = match &collector {
                Some(c) => format!("/v1/center/violations?collector={}", enc(c)),
                None => "/v1/center/violations".to_string(),
            };
            let r: Value = t.call::<(), _>("GET", &path, None)?;
            out.show(&r, |r| {
                let rows: Vec<Vec<String>> = r
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| {
                                vec![
                                    v["id"].as_str().unwrap_or_default().to_string(),
                                    v["collector"].as_str().unwrap_or_default().to_string(),
                                    v["kind"].as_str().unwrap_or_default().to_string(),
                                    v["at"].as_str().unwrap_or_default().to_string(),
                                    v["recorded_by"].as_str().unwrap_or_default().to_string(),
                                    v["revoked"]["reason"]
                                        .as_str()
                                        .map(|r| format!("revoked: {r}"))
                                        .unwrap_or_default(),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(
                    &["ID", "COLLECTOR", "KIND", "AT", "RECORDED BY", "STATE"],
                    &rows,
                )
            })
        }
        CenterCmd::Cert(CertCmd::Attempt {
            collector,
            date,
            passed,
        }) => {
            let has = |t: &str| passed.iter().any(|p| p == t);
            let body = json!({ "collector": collector, "date": date, "theory": has("theory"), "video": has("video"), "field": has("field") });
            let r: Value = t.call("POST", "/v1/center/certification/attempts", Some(&body))?;
            out.show(&r, certification_text)
        }
        CenterCmd::Cert(CertCmd::Show { collector }) => {
            let r: Value = t.call::<(), _>(
                "GET",
                &format!("/v1/center/certification/{}", enc(&collector)),
                None,
            )?;
            out.show(&r, certification_text)
        }
        CenterCmd::Training(TrainingCmd::Add {
            date,
            topic,
            attendees,
            by,
        }) => {
            let body =
                json!({ "date": date, "topic": topic, "attendees": attendees, "given_by": by });
            let r: Value = t.call("POST", "/v1/center/trainings", Some(&body))?;
            out.show(&r, |r| {
                format!("training {} recorded", r["id"].as_str().unwrap_or_default())
            })
        }
        CenterCmd::Training(TrainingCmd::List) => {
            let r: Value = t.call::<(), _>("GET", "/v1/center/trainings", None)?;
            out.show(&r, |r| {
                let rows: Vec<Vec<String>> = r
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|t| {
                                vec![
                                    t["date"].as_str().unwrap_or_default().to_string(),
                                    t["topic"].as_str().unwrap_or_default().to_string(),
                                    t["given_by"].as_str().unwrap_or_default().to_string(),
                                    t["attendees"]
                                        .as_array()
                                        .map(|a| a.len())
                                        .unwrap_or(0)
                                        .to_string(),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(&["DATE", "TOPIC", "BY", "ATTENDEES"], &rows)
            })
        }
        CenterCmd::Figures { period } => {
            let r: Value = t.call::<(), _>(
                "GET",
                &format!("/v1/center/city-figures?period={}", enc(&period)),
                None,
            )?;
            out.show(&r, |r| {
                let pct = |x: &Value| match x["rate"].as_f64() {
                    Some(v) => format!("{}/{} {:.1}%", x["n"], x["d"], v * 100.0),
                    None => format!("{}/{}", x["n"], x["d"]),
                };
                let mut rows = vec![vec![
                    "all".to_string(),
                    pct(&r["resolution"]),
                    pct(&r["timely_resolution"]),
                ]];
                for (what, list) in [
                    ("department", &r["by_department"]),
                    ("category", &r["by_category"]),
                ] {
                    for row in list.as_array().into_iter().flatten() {
                        rows.push(vec![
                            format!("{what} {}", row["key"].as_str().unwrap_or_default()),
                            pct(&row["resolution"]),
                            pct(&row["timely_resolution"]),
                        ]);
                    }
                }
                table(&["WHO", "RESOLUTION", "TIMELY"], &rows)
            })
        }
        CenterCmd::Token(TokenCmd::Rotate) => {
            let r: Value = t.call::<(), _>("POST", "/v1/center/token/rotate", None)?;
            out.show(&r, |r| {
                format!(
                    "new token (shown once; the old one no longer works):\n{}",
                    r["token"].as_str().unwrap_or_default()
                )
            })
        }
        CenterCmd::Audit { limit } => {
            let r: Value =
                t.call::<(), _>("GET", &format!("/v1/center/audit?limit={limit}"), None)?;
            out.show(&r, |r| {
                let rows: Vec<Vec<String>> = r
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| {
                                ["at", "by", "action", "target", "detail"]
                                    .iter()
                                    .map(|k| e[*k].as_str().unwrap_or_default().to_string())
                                    .collect()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(&["AT", "BY", "ACTION", "TARGET", "DETAIL"], &rows)
            })
        }
        CenterCmd::Device(DeviceCmd::Revoke { actor }) => {
            let r: Value = t.call::<(), _>(
                "POST",
                &format!("/v1/center/devices/{}/revoke", enc(&actor)),
                None,
            )?;
            out.show(&r, |_| format!("device {actor} revoked"))
        }
        CenterCmd::Grid(CenterImportCmd::Import { file }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let r: Value = t.call_raw("PUT", "/v1/center/grid", "application/geo+json", bytes)?;
            out.show(&r, |r| {
                format!(
                    "{} cells imported (grid version {})",
                    r["cells"],
                    r["version"].as_str().unwrap_or_default()
                )
            })
        }
        CenterCmd::Catalog(CenterImportCmd::Import { file }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let r: Value = t.call_raw("PUT", "/v1/center/catalog", "application/json", bytes)?;
            out.show(&r, |r| {
                format!(
                    "catalog {} imported ({} subclasses)",
                    r["version"].as_str().unwrap_or_default(),
                    r["subclasses"]
                )
            })
        }
        CenterCmd::Case(CenterCaseCmd::List {
            status,
            category,
            cell,
            collector,
            flag,
            limit,
            offset,
            xlsx,
        }) => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("status", &status),
                ("category", &category),
                ("cell", &cell),
                ("collector", &collector),
                ("flag", &flag),
            ] {
                if let Some(v) = v {
                    q.append_pair(k, v);
                }
            }
            if let Some(file) = xlsx {
                let path = format!("/v1/center/cases.xlsx?{}", q.finish());
                return save_xlsx(&mut t, &path, &file, out);
            }
            if limit > 0 {
                q.append_pair("limit", &limit.to_string());
                q.append_pair("offset", &offset.to_string());
            }
            let path = format!("/v1/center/cases?{}", q.finish());
            let cases: Value = t.call::<(), _>("GET", &path, None)?;
            out.show(&cases, |cases| {
                let rows = cases
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| {
                                let status = c["status"]
                                    .as_array()
                                    .map(|s| {
                                        s.iter()
                                            .filter_map(Value::as_str)
                                            .collect::<Vec<_>>()
                                            .join("|")
                                    })
                                    .unwrap_or_default();
                                vec![
                                    c["id"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .chars()
                                        .take(8)
                                        .collect(),
                                    status
                                        + if c["conflict"].as_bool() == Some(true) {
                                            " (conflict)"
                                        } else {
                                            ""
                                        },
                                    c["category"].as_str().unwrap_or_default().to_string(),
                                    c["cell"].as_str().unwrap_or("-").to_string(),
                                    c["collector"].as_str().unwrap_or_default().to_string(),
                                    if c["photos_pending"].as_bool() == Some(true) {
                                        format!("{} (photos pending)", c["photos"])
                                    } else {
                                        c["photos"].to_string()
                                    },
                                    c["description"].as_str().unwrap_or_default().to_string(),
                                ]
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                table(
                    &[
                        "ID",
                        "STATUS",
                        "CATEGORY",
                        "CELL",
                        "COLLECTOR",
                        "PHOTOS",
                        "DESCRIPTION",
                    ],
                    &rows,
                )
            })
        }
        CenterCmd::Case(CenterCaseCmd::Show { id }) => {
            let id = full_case_id(&mut t, &id)?;
            let c: Value = t.call::<(), _>("GET", &format!("/v1/center/cases/{id}"), None)?;
            out.show(&c, |c| serde_json::to_string_pretty(c).unwrap_or_default())
        }
        CenterCmd::Case(CenterCaseCmd::Register { id, note }) => decide(
            &mut t,
            &id,
            json!({ "action": "register", "note": note }),
            out,
        ),
        CenterCmd::Case(CenterCaseCmd::Reject {
            id,
            reason,
            text,
            record_violation,
        }) => decide(
            &mut t,
            &id,
            json!({ "action": "reject", "reason": reason, "text": text, "record_violation": record_violation }),
            out,
        ),
        CenterCmd::Case(CenterCaseCmd::Dispatch {
            id,
            department,
            note,
        }) => decide(
            &mut t,
            &id,
            json!({ "action": "dispatch", "department": department, "note": note }),
            out,
        ),
        CenterCmd::Case(CenterCaseCmd::Handled { id, note }) => decide(
            &mut t,
            &id,
            json!({ "action": "handled", "note": note }),
            out,
        ),
        CenterCmd::Case(CenterCaseCmd::Close { id, note }) => {
            decide(&mut t, &id, json!({ "action": "close", "note": note }), out)
        }
        CenterCmd::Case(CenterCaseCmd::Rework { id, note }) => decide(
            &mut t,
            &id,
            json!({ "action": "rework", "note": note }),
            out,
        ),
        CenterCmd::Task(CenterTaskCmd::Create {
            kind,
            case,
            to,
            due,
            lon,
            lat,
            category,
            note,
        }) => {
            let case = case.map(|c| full_case_id(&mut t, &c)).transpose()?;
            let body = json!({ "kind": kind, "case": case, "to": to, "due": due, "lon": lon, "lat": lat, "category": category, "note": note });
            let r: Value = t.call("POST", "/v1/center/tasks", Some(&body))?;
            out.show(&r, |r| {
                format!(
                    "{} task {} sent to {}, due {}",
                    r["spec"]["kind"].as_str().unwrap_or_default(),
                    r["id"].as_str().unwrap_or_default(),
                    r["spec"]["to_name"].as_str().unwrap_or_default(),
                    r["spec"]["due_at"].as_str().unwrap_or_default()
                )
            })
        }
        CenterCmd::Task(CenterTaskCmd::List { to }) => {
            let path = match &to {
                Some(who) => format!("/v1/center/tasks?to={}", enc(who)),
                None => "/v1/center/tasks".to_string(),
            };
            let tasks: Value = t.call::<(), _>("GET", &path, None)?;
            out.show(&tasks, |tasks| {
                let rows = tasks
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                vec![
                                    x["id"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .chars()
                                        .take(8)
                                        .collect(),
                                    x["spec"]["kind"].as_str().unwrap_or_default().to_string(),
                                    x["spec"]["to_name"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .to_string(),
                                    x["spec"]["due_at"].as_str().unwrap_or_default().to_string(),
                                    x["answer"]["answered_at"]
                                        .as_str()
                                        .unwrap_or("-")
                                        .to_string(),
                                    x["answer_received_at"].as_str().unwrap_or("-").to_string(),
                                    x["timeliness"].as_str().unwrap_or_default().to_string(),
                                ]
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                table(
                    &[
                        "ID",
                        "KIND",
                        "TO",
                        "DUE",
                        "ANSWERED",
                        "RECEIVED",
                        "TIMELINESS",
                    ],
                    &rows,
                )
            })
        }
        CenterCmd::Survey(CenterSurveyCmd::Create {
            name,
            cells,
            categories,
            from,
            to,
        }) => {
            let body = json!({ "name": name, "cells": cells, "categories": categories, "from": from, "to": to });
            let r: Value = t.call("POST", "/v1/center/surveys", Some(&body))?;
            out.show(&r, |r| {
                format!(
                    "survey {} created: {} cells, {} to {}",
                    r["id"].as_str().unwrap_or_default(),
                    r["cells"].as_array().map(|c| c.len()).unwrap_or(0),
                    r["from"].as_str().unwrap_or_default(),
                    r["to"].as_str().unwrap_or_default()
                )
            })
        }
        CenterCmd::Survey(CenterSurveyCmd::List) => {
            let r: Value = t.call::<(), _>("GET", "/v1/center/surveys", None)?;
            out.show(&r, |r| serde_json::to_string_pretty(r).unwrap_or_default())
        }
        CenterCmd::Survey(CenterSurveyCmd::Report { id }) => {
            let r: Value = t.call::<(), _>(
                "GET",
                &format!("/v1/center/surveys/{}/report", enc(&id)),
                None,
            )?;
            out.show(&r, |r| {
                let mut text = format!(
                    "survey {} ({}): {} cases\n",
                    id,
                    r["survey"]["name"].as_str().unwrap_or_default(),
                    r["cases"]
                );
                for (title, key) in [("by category", "by_category"), ("by cell", "by_cell")] {
                    let rows = r[key]
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| vec![k.clone(), v.to_string()])
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default();
                    text.push_str(&format!("{title}:\n{}\n", table(&["", "CASES"], &rows)));
                }
                text
            })
        }
        CenterCmd::Channel(ChannelCmd::Add {
            name,
            per_hour,
            verify_within_hours,
        }) => {
            let body = json!({ "name": name, "per_hour": per_hour, "verify_within_hours": verify_within_hours });
            let r: Value = t.call("POST", "/v1/center/channels", Some(&body))?;
            out.show(&r, |r| {
                format!(
                    "channel {} opened; its API key (shown once): {}",
                    r["channel"]["name"].as_str().unwrap_or_default(),
                    r["api_key"].as_str().unwrap_or_default()
                )
            })
        }
        CenterCmd::Channel(ChannelCmd::List) => {
            let r: Value = t.call::<(), _>("GET", "/v1/center/channels", None)?;
            out.show(&r, |r| {
                let rows = r
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| {
                                vec![
                                    c["name"].as_str().unwrap_or_default().to_string(),
                                    c["per_hour"].to_string(),
                                    c["verify_within_hours"]
                                        .as_u64()
                                        .map(|h| format!("{h} h"))
                                        .unwrap_or("-".into()),
                                    if c["revoked"] == true {
                                        "revoked"
                                    } else {
                                        "active"
                                    }
                                    .to_string(),
                                ]
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                table(&["CHANNEL", "PER_HOUR", "VERIFY", "STATE"], &rows)
            })
        }
        CenterCmd::Channel(ChannelCmd::Revoke { name }) => {
            let r: Value = t.call::<(), _>(
                "POST",
                &format!("/v1/center/channels/{}/revoke", enc(&name)),
                None,
            )?;
            out.show(&r, |_| format!("channel {name} revoked"))
        }
        CenterCmd::Finding(FindingCmd::Add {
            source,
            category,
            lon,
            lat,
            at,
            note,
        }) => {
            let body = json!({ "source": source, "category": category, "lon": lon, "lat": lat, "at": at, "note": note });
            let r: Value = t.call("POST", "/v1/center/findings", Some(&body))?;
            out.show(&r, |r| {
                format!("finding {} recorded", r["id"].as_str().unwrap_or_default())
            })
        }
        CenterCmd::Finding(FindingCmd::List) => {
            let r: Value = t.call::<(), _>("GET", "/v1/center/findings", None)?;
            out.show(&r, |r| {
                let rows = r
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|f| {
                                ["at", "source", "category", "note"]
                                    .iter()
                                    .map(|k| f[*k].as_str().unwrap_or_default().to_string())
                                    .collect()
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                table(&["AT", "SOURCE", "CATEGORY", "NOTE"], &rows)
            })
        }
        CenterCmd::Finding(FindingCmd::Import { file }) => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let rows =
                crate::findings_csv::read(f).with_context(|| format!("{}", file.display()))?;
            let r: Value = t.call("POST", "/v1/center/findings/bulk", Some(&rows))?;
            out.show(&r, |r| {
                format!(
                    "{} findings recorded",
                    r.as_array().map(|a| a.len()).unwrap_or(0)
                )
            })
        }
        CenterCmd::Report {
            period,
            collector,
            company,
            csv,
            explain,
            xlsx,
            settlement,
        } => {
            if let Some(file) = xlsx {
                let mut q = form_urlencoded::Serializer::new(String::new());
                q.append_pair("period", &period);
                for (k, v) in [("collector", &collector), ("company", &company)] {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
                let book = if settlement { "settlement" } else { "report" };
                let path = format!("/v1/center/{book}.xlsx?{}", q.finish());
                return save_xlsx(&mut t, &path, &file, out);
            }
            let mut path = format!(
                "/v1/center/report?period={}&explain={explain}",
                enc(&period)
            );
            if let Some(c) = &collector {
                path.push_str(&format!("&collector={}", enc(c)));
            }
            if let Some(c) = &company {
                path.push_str(&format!("&company={}", enc(c)));
            }
            let reports: Value = t.call::<(), _>("GET", &path, None)?;
            if csv && !out.is_json() {
                println!("{}", report_csv(&reports));
                return Ok(());
            }
            out.show(&reports, report_table)
        }
        CenterCmd::Map {
            collector,
            day,
            out: path,
        } => {
            let svg = t.get_bytes(&format!(
                "/v1/center/map?collector={}&day={}",
                enc(&collector),
                enc(&day)
            ))?;
            crate::device::write_atomically(&path, &svg)?;
            out.show(&json!({ "file": path, "bytes": svg.len() }), |_| {
                format!(
                    "coverage map of {collector} on {day} written to {}",
                    path.display()
                )
            })
        }
        CenterCmd::Config(cmd) => {
            let r: Value = match cmd {
                ConfigCmd::Show => t.call::<(), _>("GET", "/v1/center/config", None)?,
                ConfigCmd::Set { key, value } => t.call(
                    "POST",
                    "/v1/center/config/set",
                    Some(&json!({ "key": key, "value": value })),
                )?,
                ConfigCmd::Import { file } => {
                    let bytes = std::fs::read(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    t.call_raw("PUT", "/v1/center/config", "application/toml", bytes)?
                }
            };
            out.show(&r, |r| {
                format!(
                    "# configuration version {}\n{}",
                    r["version"],
                    r["toml"].as_str().unwrap_or_default()
                )
            })
        }
        CenterCmd::Shifts { flagged } => {
            let rows: Value =
                t.call::<(), _>("GET", &format!("/v1/center/shifts?flagged={flagged}"), None)?;
            out.show(&rows, |rows| {
                let body = rows
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|r| {
                                vec![
                                    r["collector"].as_str().unwrap_or_default().to_string(),
                                    r["mark"]["kind"].as_str().unwrap_or_default().to_string(),
                                    r["mark"]["at"].as_str().unwrap_or_default().to_string(),
                                    r["mark"]["cell"].as_str().unwrap_or("-").to_string(),
                                    r["flags"]
                                        .as_array()
                                        .map(|f| {
                                            f.iter()
                                                .filter_map(|x| x["kind"].as_str())
                                                .collect::<Vec<_>>()
                                                .join(",")
                                        })
                                        .unwrap_or_default(),
                                ]
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                table(&["COLLECTOR", "KIND", "AT", "CELL", "FLAGS"], &body)
            })
        }
        CenterCmd::Digest => {
            let d: Value = t.call::<(), _>("GET", "/v1/center/digest", None)?;
            out.show(&d, |d| d["digest"].as_str().unwrap_or_default().to_string())
        }
    }
}

/// A full case id from a unique prefix, as the review queue lists them.
fn full_case_id(t: &mut HttpTransport, text: &str) -> Result<String> {
    if text.len() == 36 {
        return Ok(text.to_string());
    }
    // The server looks the prefix up over every case, not one page.
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("id", text).append_pair("limit", "2");
    let path = format!("/v1/center/cases?{}", q.finish());
    let cases: Vec<Value> = t.call::<(), _>("GET", &path, None)?;
    match cases.as_slice() {
        [one] => one["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("id: the server listed a case without an id")),
        [] => Err(anyhow!("id: no case starts with `{text}`")),
        _ => Err(anyhow!(
            "id: `{text}` matches more than one case; give more characters"
        )),
    }
}

fn decide(t: &mut HttpTransport, id: &str, body: Value, out: &Output) -> Result<()> {
    let id = full_case_id(t, id)?;
    let r: Value = t.call(
        "POST",
        &format!("/v1/center/cases/{id}/decisions"),
        Some(&body),
    )?;
    out.show(&r, |r| {
        let status = r["summary"]["status"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .unwrap_or_default();
        format!(
            "case {id} is now {status}{}",
            if r["summary"]["conflict"] == true {
                " (conflict: resolve with one more decision)"
            } else {
                ""
            }
        )
    })
}

const REPORT_COLUMNS: [(&str, &str); 10] = [
    ("coverage", "COVERAGE"),
    ("timeliness", "TIMELY"),
    ("verify_on_time", "VERIFY"),
    ("check_on_time", "CHECK"),
    ("error_rate", "ERROR"),
    ("miss_rate", "MISS"),
    ("valid_report_rate", "VALID"),
    ("quick_fix_credit", "QF_CREDIT"),
    ("off_post_events", "OFF_POST"),
    ("composite", "SCORE"),
];

fn rate_text(v: &Value) -> String {
    match (v["n"].as_u64(), v["d"].as_u64()) {
        (Some(n), Some(d)) => match v["rate"].as_f64() {
            Some(r) => format!("{n}/{d} {:.1}%", r * 100.0),
            None => format!("{n}/{d}"),
        },
        _ => v.to_string(),
    }
}

pub fn report_table(reports: &Value) -> String {
    let rows = reports
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let mut row = vec![r["who"].as_str().unwrap_or_default().to_string()];
                    row.extend(REPORT_COLUMNS.iter().map(|(k, _)| rate_text(&r[*k])));
                    row.push(r["grade"].as_str().unwrap_or_default().to_string());
                    row
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut headers = vec!["WHO"];
    headers.extend(REPORT_COLUMNS.iter().map(|(_, h)| *h));
    headers.push("GRADE");
    let mut text = table(&headers, &rows);
    for r in reports.as_array().into_iter().flatten() {
        if let Some(ex) = r.get("explain") {
            text.push_str(&format!(
                "\n\n{} — the records behind the numbers:\n{}",
                r["who"].as_str().unwrap_or_default(),
                serde_json::to_string_pretty(ex).unwrap_or_default()
            ));
        }
    }
    text
}

fn report_csv(reports: &Value) -> String {
    let mut lines = vec!["who,period,coverage_n,coverage_d,timeliness_n,timeliness_d,verify_n,verify_d,check_n,check_d,error_n,error_d,miss_n,miss_d,valid_n,valid_d,cases,quick_fixes,quick_fix_credit,late_starts,early_leaves,absent_halves,off_post_events,composite,grade".to_string()];
    for r in reports.as_array().into_iter().flatten() {
        let nd = |k: &str| format!("{},{}", r[k]["n"], r[k]["d"]);
        lines.push(format!(
            "\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r["who"].as_str().unwrap_or_default().replace('"', "\"\""),
            r["period"].as_str().unwrap_or_default(),
            nd("coverage"),
            nd("timeliness"),
            nd("verify_on_time"),
            nd("check_on_time"),
            nd("error_rate"),
            nd("miss_rate"),
            nd("valid_report_rate"),
            r["cases_reported"],
            r["quick_fixes"],
            r["quick_fix_credit"],
            r["late_starts"],
            r["early_leaves"],
            r["absent_halves"],
            r["off_post_events"],
            r["composite"],
            r["grade"].as_str().unwrap_or_default()
        ));
    }
    lines.join("\n")
}

/// Percent-encodes a value for a path segment or a query (names and
/// companies are free text).
fn enc(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
