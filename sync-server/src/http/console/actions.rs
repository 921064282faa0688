//! The review actions a case's current status allows, as forms: one piece
//! of markup for the queue's rows and the case page, so both offer exactly
//! what the lifecycle (`Status::may_become`) permits.

use field_core::model::Status;
use maud::{Markup, html};

use crate::service::Action;

const REASONS: [&str; 7] = [
    "wrong_category",
    "wrong_location",
    "duplicate",
    "false_report",
    "out_of_scope",
    "bad_photo",
    "other",
];

/// The actions offered from `statuses` (all values when in conflict).
pub fn allowed(statuses: &[Status], quick_fix: bool) -> Vec<Action> {
    let from = |want: &[Status], to: Status| {
        statuses
            .iter()
            .any(|s| want.contains(s) && s.may_become(to, quick_fix))
    };
    let mut out = Vec::new();
    if from(&[Status::Reported], Status::Registered) {
        out.push(Action::Register);
    }
    if from(&[Status::Reported], Status::Rejected) {
        out.push(Action::Reject);
    }
    if from(&[Status::Registered], Status::Dispatched) {
        out.push(Action::Dispatch);
    }
    if from(&[Status::Dispatched], Status::Handled) {
        out.push(Action::Handled);
    }
    if from(&[Status::Reported, Status::Handled], Status::Closed) {
        out.push(Action::Close);
    }
    if from(&[Status::Handled], Status::Dispatched) {
        out.push(Action::Rework);
    }
    out
}

/// The forms for `actions` on case `id`; `back` is the page to return to.
pub fn forms(
    l: field_i18n::Lang,
    id: &str,
    actions: &[Action],
    csrf: &str,
    back: Option<&str>,
) -> Markup {
    let to = format!("/console/cases/{id}/decide");
    let hidden = |action: &str| {
        html! {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value=(action);
            @if let Some(b) = back { input type="hidden" name="back" value=(b); }
        }
    };
    html! {
        @for a in actions {
            @match a {
                Action::Register => form.inline.register method="post" action=(to) {
                    (hidden("register")) button.register type="submit" { (l.t("act-register")) }
                },
                Action::Reject => form.inline.reject method="post" action=(to) {
                    (hidden("reject"))
                    select name="reason" { @for r in REASONS { option value=(r) { (l.t(&format!("reason-{r}"))) } } }
                    input name="text" size="10" placeholder=(l.t("act-note"));
                    label title=(l.t("act-red-line-hint")) {
                        input type="checkbox" name="violation" value="1"; " " (l.t("act-red-line"))
                    }
                    button type="submit" { (l.t("act-reject")) }
                },
                Action::Dispatch => form.inline.dispatch method="post" action=(to) {
                    (hidden("dispatch"))
                    input name="department" size="10" placeholder=(l.t("act-department")) required;
                    button type="submit" { (l.t("act-dispatch")) }
                },
                Action::Handled => form.inline.handled method="post" action=(to) {
                    (hidden("handled")) button type="submit" { (l.t("act-handled")) }
                },
                Action::Close => form.inline.close method="post" action=(to) {
                    (hidden("close")) button type="submit" { (l.t("act-close")) }
                },
                Action::Rework => form.inline.rework method="post" action=(to) {
                    (hidden("rework")) button type="submit" { (l.t("act-rework")) }
                },
            }
            " "
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_what_the_lifecycle_allows() {
        use Action::*;
        assert_eq!(allowed(&[Status::Reported], false), vec![Register, Reject]);
        assert_eq!(allowed(&[Status::Reported], true), vec![Reject, Close]);
        assert_eq!(allowed(&[Status::Registered], false), vec![Dispatch]);
        assert_eq!(allowed(&[Status::Handled], false), vec![Close, Rework]);
        assert!(allowed(&[Status::Closed], false).is_empty());
        // A conflict offers what either value allows.
        assert_eq!(
            allowed(&[Status::Registered, Status::Rejected], false),
            vec![Dispatch]
        );
    }
}
