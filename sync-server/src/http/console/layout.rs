//! The frame every console page shares, and how errors are shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::Staff;
use crate::http::AppError;

const STYLE: &str = "body{font-family:sans-serif;margin:0}nav{background:#234;padding:.5em 1em}\
nav a,nav button{color:#fff;margin-right:1em;background:none;border:0;cursor:pointer;font:inherit}\
main{padding:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;\
text-align:left;vertical-align:top}p.error{color:#a00}.flag{background:#fdd;padding:0 .3em}\
.conflict{background:#fc6;padding:0 .3em}img.thumb{max-height:80px}form.inline{display:inline}";

pub(super) fn page(title: &str, staff: Option<&Staff>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · field console" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                @if let Some(s) = staff {
                    nav {
                        a href="/console/queue" { "Review queue" }
                        a href="/console/map" { "Map" }
                        a href="/console/report" { "Reports" }
                        @if s.principal.user.role == crate::storage::Role::Admin {
                            a href="/console/accounts" { "Accounts" }
                        }
                        span style="color:#9bd" { (s.principal.user.name) " (" (s.principal.user.role.as_str()) ")" }
                        form.inline method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

pub(super) fn error_page(staff: Option<&Staff>, status: StatusCode, message: &str) -> Response {
    (
        status,
        page("Error", staff, html! { p.error { (message) } }),
    )
        .into_response()
}

pub(super) fn service_error(staff: &Staff, e: impl Into<AppError>) -> Response {
    let e: AppError = e.into();
    let message = match &e.body.field {
        Some(field) => format!("{field}: {}", e.body.reason),
        None => e.body.reason.clone(),
    };
    error_page(Some(staff), e.status, &message)
}

/// An instant as the city reads it: local date and time in its zone.
pub(super) fn local_time(ms: i64, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// [`local_time`] of an RFC 3339 text (as the JSON views carry instants).
pub(super) fn local_text(text: &str, tz: chrono_tz::Tz) -> String {
    field_core::model::Timestamp::parse("at", text)
        .map(|t| local_time(t.millis(), tz))
        .unwrap_or_else(|_| text.to_string())
}
