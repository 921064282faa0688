//! XLSX workbooks written with `rust_xlsxwriter`: one sheet each, a frozen
//! header row with an autofilter, rates as numbers formatted as
//! percentages, money to the fen, instants as dates on the city's clock.

use chrono_tz::Tz;
use field_core::assess::{Rate, Report};
use field_i18n::Lang;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use crate::service::CaseRow;

#[derive(Debug, thiserror::Error)]
#[error("the workbook could not be written: {0}")]
pub struct WorkbookError(#[from] XlsxError);

type Result<T> = std::result::Result<T, WorkbookError>;

/// A value of one cell.
enum Cell {
    Text(String),
    Number(f64),
    /// A share (0.853), shown as 85.3%.
    Share(Option<f64>),
    Money(f64),
    /// A calendar day.
    Date(chrono::NaiveDate),
    /// An instant on the city's clock.
    When(chrono::NaiveDateTime),
    Empty,
}

struct Formats {
    head: Format,
    share: Format,
    money: Format,
    date: Format,
    when: Format,
}

impl Formats {
    fn new() -> Formats {
        Formats {
            head: Format::new().set_bold().set_background_color("DDEBF7"),
            share: Format::new().set_num_format("0.0%"),
            money: Format::new().set_num_format("#,##0.00"),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            when: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        }
    }
}

fn sheet(name: &str, heads: &[String], rows: &[Vec<Cell>], widths: &[f64]) -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let f = Formats::new();
    let ws: &mut Worksheet = wb.add_worksheet();
    ws.set_name(name)?;
    for (c, h) in heads.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &f.head)?;
        ws.set_column_width(c as u16, widths.get(c).copied().unwrap_or(12.0))?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, v) in row.iter().enumerate() {
            let c = c as u16;
            match v {
                Cell::Text(s) => {
                    ws.write_string(r, c, s)?;
                }
                Cell::Number(x) => {
                    ws.write_number(r, c, *x)?;
                }
                Cell::Share(Some(x)) => {
                    ws.write_number_with_format(r, c, *x, &f.share)?;
                }
                Cell::Share(None) | Cell::Empty => {}
                Cell::Money(x) => {
                    ws.write_number_with_format(r, c, *x, &f.money)?;
                }
                Cell::Date(d) => {
                    ws.write_datetime_with_format(r, c, d, &f.date)?;
                }
                Cell::When(t) => {
                    ws.write_datetime_with_format(r, c, t, &f.when)?;
                }
            }
        }
    }
    ws.set_freeze_panes(1, 0)?;
    if !heads.is_empty() {
        ws.autofilter(0, 0, rows.len() as u32, heads.len() as u16 - 1)?;
    }
    Ok(wb.save_to_buffer()?)
}

fn share(r: &Rate) -> Cell {
    Cell::Share(r.rate)
}

/// The reports (one row per collector or company and period): the four
/// rates, the composite and grade, the counts and the deductions.
pub fn reports(l: Lang, reports: &[Report]) -> Result<Vec<u8>> {
    let heads: Vec<String> = [
        "xlsx-who",
        "report-period",
        "xlsx-days-charged",
        "rate-coverage",
        "rate-miss",
        "rate-timeliness",
        "rate-error",
        "rate-valid-report",
        "composite",
        "grade",
        "xlsx-cases",
        "quick-fix",
        "volume",
        "xlsx-late-starts",
        "xlsx-early-leaves",
        "xlsx-absent-halves",
        "xlsx-off-post",
        "report-deductions",
    ]
    .iter()
    .map(|k| l.t(k))
    .collect();
    let rows: Vec<Vec<Cell>> = reports
        .iter()
        .map(|r| {
            vec![
                Cell::Text(r.who.clone()),
                Cell::Text(r.period.clone()),
                Cell::Number(r.days_assigned.into()),
                share(&r.coverage),
                share(&r.miss_rate),
                share(&r.timeliness),
                share(&r.error_rate),
                share(&r.valid_report_rate),
                Cell::Number((r.composite * 10.0).round() / 10.0),
                Cell::Text(r.grade.to_string()),
                Cell::Number(r.cases_reported as f64),
                Cell::Number(r.quick_fixes as f64),
                Cell::Number(r.volume as f64),
                Cell::Number(r.late_starts as f64),
                Cell::Number(r.early_leaves as f64),
                Cell::Number(r.absent_halves as f64),
                Cell::Number(r.off_post_events as f64),
                Cell::Money(r.deductions_total),
            ]
        })
        .collect();
    sheet(&l.t("xlsx-sheet-report"), &heads, &rows, &[16.0, 12.0])
}

/// The settlement: per company and quarter, fee, deductions, payable,
/// owed back, waived, and the day it is due.
pub fn settlement(l: Lang, reports: &[Report]) -> Result<Vec<u8>> {
    let heads: Vec<String> = [
        "report-company",
        "report-period",
        "xlsx-fee",
        "report-deductions",
        "xlsx-payable",
        "xlsx-owed-back",
        "xlsx-waived",
        "xlsx-due-by",
    ]
    .iter()
    .map(|k| l.t(k))
    .collect();
    let rows: Vec<Vec<Cell>> = reports
        .iter()
        .filter_map(|r| r.settlement.as_ref().map(|s| (r, s)))
        .map(|(r, s)| {
            vec![
                Cell::Text(r.who.clone()),
                Cell::Text(r.period.clone()),
                Cell::Money(s.fee),
                Cell::Money(s.deductions),
                Cell::Money(s.payable),
                Cell::Money(s.owed_back),
                Cell::Money(s.waived),
                s.due_by
                    .parse::<chrono::NaiveDate>()
                    .map(Cell::Date)
                    .unwrap_or_else(|_| Cell::Text(s.due_by.clone())),
            ]
        })
        .collect();
    sheet(&l.t("xlsx-sheet-settlement"), &heads, &rows, &[20.0, 12.0])
}

/// The case list as the queue filtered it.
pub fn cases(l: Lang, rows: &[CaseRow], tz: Tz) -> Result<Vec<u8>> {
    let heads: Vec<String> = [
        "xlsx-case-id",
        "col-status",
        "col-category",
        "xlsx-category-name",
        "col-cell",
        "col-collector",
        "case-reported",
        "col-description",
        "case-photos",
        "col-flags",
    ]
    .iter()
    .map(|k| l.t(k))
    .collect();
    let out: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            let s = &r.summary;
            let status = s
                .status
                .iter()
                .map(|st| l.t(&format!("status-{}", st.as_str())))
                .collect::<Vec<_>>()
                .join(" / ");
            let reported = s
                .reported_at
                .and_then(|t| chrono::DateTime::from_timestamp_millis(t.millis()))
                .map(|t| Cell::When(t.with_timezone(&tz).naive_local()))
                .unwrap_or(Cell::Empty);
            let text = |o: &Option<String>| Cell::Text(o.clone().unwrap_or_default());
            vec![
                Cell::Text(s.id.to_string()),
                Cell::Text(status),
                text(&s.category),
                text(&s.category_name),
                text(&s.cell),
                text(&s.collector),
                reported,
                text(&s.description),
                Cell::Number(s.photos as f64),
                Cell::Text(
                    r.flags
                        .iter()
                        .map(|f| l.t(&format!("flag-{}", f.kind)))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ]
        })
        .collect();
    sheet(
        &l.t("xlsx-sheet-cases"),
        &heads,
        &out,
        &[38.0, 12.0, 10.0, 16.0, 18.0, 10.0, 20.0, 30.0],
    )
}
