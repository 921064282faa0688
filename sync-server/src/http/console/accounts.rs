//! Accounts, for admins: who holds which role (devices, pending codes,
//! disabled), and the audit log of every account and reference-data action.
//! A reviewer asking gets the 403 the service answers.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{local_text, page, service_error};
use super::session::Staff;
use crate::http::AppState;
use crate::http::routes::blocking;

pub async fn accounts(State(s): State<AppState>, staff: Staff) -> Response {
    let (c, p) = (s.center.clone(), staff.principal.clone());
    let loaded = blocking(move || {
        let audit = c.audit_log(&p, Some(200))?;
        let users = c.users(&p, None)?;
        let tz = c.city_tz()?;
        Ok((users, audit, tz))
    })
    .await;
    let (users, audit, tz) = match loaded {
        Ok(v) => v,
        Err(e) => return service_error(&staff, e),
    };
    let body = html! {
        h2 { "Users and roles" }
        table {
            tr { th { "name" } th { "role" } th { "company" } th { "devices" } th { "unused codes" } th { "state" } }
            @for u in &users {
                tr {
                    td { (u.user.name) }
                    td { (u.user.role) }
                    td { (u.user.company.clone().unwrap_or_default()) }
                    td { (u.devices.iter().filter(|d| !d.revoked).count()) " active / " (u.devices.len()) }
                    td { (u.pending_codes) }
                    td { @if u.disabled { span.flag { "disabled" } } @else { "enabled" } }
                }
            }
        }
        h2 { "Audit log" }
        p { "Newest first; times in " (tz.name()) "." }
        table {
            tr { th { "when" } th { "who" } th { "action" } th { "target" } th { "detail" } }
            @for e in &audit {
                tr {
                    td { (local_text(&e.at.to_string(), tz)) }
                    td { (e.by) }
                    td { (e.action) }
                    td { (e.target) }
                    td { (e.detail) }
                }
            }
        }
    };
    page("Accounts", Some(&staff), body).into_response()
}
