//! Files the center's people open elsewhere: XLSX workbooks of the reports,
//! the settlement and the case list (numbers as numbers, dates as dates,
//! column heads in the reader's language).

pub mod workbook;
