//! The frame every console page shares, and how errors are shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use field_i18n::{FluentValue, LANGS, Lang};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::Staff;
use crate::http::AppError;

const STYLE: &str = "body{font-family:sans-serif;margin:0}nav{background:#234;padding:.5em 1em}\
nav a,nav button{color:#fff;margin-right:1em;background:none;border:0;cursor:pointer;font:inherit}\
main{padding:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;\
text-align:left;vertical-align:top}p.error{color:#a00}.flag{background:#fdd;padding:0 .3em}\
.conflict{background:#fc6;padding:0 .3em}img.thumb{max-height:80px}form.inline{display:inline}";

/// A message in the page's language.
pub(super) fn t(lang: Lang, key: &str) -> String {
    lang.t(key)
}

/// A message with arguments in the page's language.
pub(super) fn tr(lang: Lang, key: &str, args: &[(&'static str, FluentValue<'static>)]) -> String {
    lang.tr(key, args)
}

/// A link that switches the console's language and comes back to `here`.
fn lang_link(to: Lang, here: &str) -> String {
    format!(
        "/console/lang?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("to", to.tag())
            .append_pair("next", here)
            .finish()
    )
}

pub(super) fn page(lang: Lang, title: &str, staff: Option<&Staff>, body: Markup) -> Markup {
    let here = staff.map(|s| s.here.as_str()).unwrap_or("/console/sign-in");
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                title { (title) " · " (lang.t("app-name")) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav {
                    @if let Some(s) = staff {
                        a #nav-queue href="/console/queue" { (lang.t("nav-queue")) }
                        a #nav-map href="/console/map" { (lang.t("nav-map")) }
                        a #nav-reports href="/console/report" { (lang.t("nav-reports")) }
                        a #nav-dashboard href="/console/dashboard" { (lang.t("nav-dashboard")) }
                        @if s.principal.user.role == crate::storage::Role::Admin {
                            a #nav-accounts href="/console/accounts" { (lang.t("nav-accounts")) }
                        }
                        span style="color:#9bd" { (s.principal.user.name) " (" (role_name(lang, s.principal.user.role)) ")" }
                        form.inline method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { (lang.t("nav-sign-out")) }
                        }
                    }
                    span #lang title=(lang.t("lang-switch")) {
                        @for l in LANGS {
                            @if l == lang { span style="color:#fff;margin-right:1em" { (l.own_name()) } }
                            @else { a lang=(l.tag()) href=(lang_link(l, here)) { (l.own_name()) } }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A role's name in the page's language.
pub(super) fn role_name(lang: Lang, role: crate::storage::Role) -> String {
    lang.t(&format!("role-{}", role.as_str()))
}

/// A case status's name in the page's language.
pub(super) fn status_name(lang: Lang, status: &str) -> String {
    lang.t(&format!("status-{status}"))
}

pub(super) fn error_page(staff: Option<&Staff>, status: StatusCode, message: &str) -> Response {
    let lang = staff.map(|s| s.lang).unwrap_or_default();
    error_page_in(lang, staff, status, message)
}

pub(super) fn error_page_in(
    lang: Lang,
    staff: Option<&Staff>,
    status: StatusCode,
    message: &str,
) -> Response {
    (
        status,
        page(
            lang,
            &lang.t("page-error"),
            staff,
            html! { p.error { (message) } },
        ),
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

/// An instant as the city reads it: local date and time in its zone, in
/// the page's locale.
pub(super) fn local_time(lang: Lang, ms: i64, tz: chrono_tz::Tz) -> String {
    lang.date_time(ms, tz)
}

/// [`local_time`] of an RFC 3339 text (as the JSON views carry instants).
pub(super) fn local_text(lang: Lang, text: &str, tz: chrono_tz::Tz) -> String {
    field_core::model::Timestamp::parse("at", text)
        .map(|t| local_time(lang, t.millis(), tz))
        .unwrap_or_else(|_| text.to_string())
}
