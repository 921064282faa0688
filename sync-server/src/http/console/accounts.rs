//! Accounts, for admins: who holds which role (devices, pending codes,
//! disabled), and the audit log of every account and reference-data action.
//! A reviewer asking gets the 403 the service answers.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{local_text, page, role_name, service_error, t, tr};
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
    let l = staff.lang;
    let body = html! {
        h2 { (t(l, "accounts-users")) }
        table {
            tr { th { (t(l, "accounts-name")) } th { (t(l, "accounts-role")) } th { (t(l, "accounts-company")) } th { (t(l, "accounts-devices")) } th { (t(l, "accounts-codes")) } th { (t(l, "accounts-state")) } }
            @for u in &users {
                tr {
                    td { (u.user.name) }
                    td { (crate::storage::Role::parse(&u.user.role).map(|r| role_name(l, r)).unwrap_or_else(|| u.user.role.clone())) }
                    td { (u.user.company.clone().unwrap_or_default()) }
                    td { (tr(l, "accounts-active", &[("active", u.devices.iter().filter(|d| !d.revoked).count().into()), ("all", u.devices.len().into())])) }
                    td { (u.pending_codes) }
                    td { @if u.disabled { span.flag { (t(l, "accounts-disabled")) } } @else { (t(l, "accounts-enabled")) } }
                }
            }
        }
        h2 { (t(l, "accounts-audit")) }
        p { (tr(l, "accounts-audit-note", &[("zone", tz.name().into())])) }
        table {
            tr { th { (t(l, "audit-when")) } th { (t(l, "audit-who")) } th { (t(l, "audit-action")) } th { (t(l, "audit-target")) } th { (t(l, "audit-detail")) } }
            @for e in &audit {
                tr {
                    td { (local_text(l, &e.at.to_string(), tz)) }
                    td { (e.by) }
                    td { (e.action) }
                    td { (e.target) }
                    td { (e.detail) }
                }
            }
        }
    };
    page(l, &t(l, "accounts-title"), Some(&staff), body).into_response()
}
