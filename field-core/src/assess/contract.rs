//! The contract's arithmetic, pure: volume (采集总量) and errors above the
//! error-rate threshold. The threshold is strict ("below 4%"), so 1 error
//! in 25 cases (exactly 4.0%) is a breach.

/// The most errors that keep `errors / cases` strictly below `threshold`.
pub fn errors_allowed(cases: u64, threshold: f64) -> u64 {
    let limit = threshold * cases as f64;
    let nearest = limit.round();
    // k < limit: one less than the limit when it is a whole number (with a
    // tolerance for 0.04 × 25 not being exactly 1 in binary).
    if (limit - nearest).abs() < 1e-9 {
        (nearest as u64).saturating_sub(1)
    } else {
        limit.floor().max(0.0) as u64
    }
}

/// Errors above the threshold: errors − the largest count that keeps the
/// rate below it. Computed per collector and calendar month, then summed.
pub fn errors_above_threshold(errors: u64, cases: u64, threshold: f64) -> u64 {
    errors.saturating_sub(errors_allowed(cases, threshold))
}

/// Whether an error rate breaches the threshold (strictly below is fine).
pub fn error_rate_breached(errors: u64, cases: u64, threshold: f64) -> bool {
    errors_above_threshold(errors, cases, threshold) > 0
}

/// Registered formal cases + ⌊approved quick fixes ÷ 3⌋.
pub fn volume(registered: u64, approved_quick_fixes: u64) -> u64 {
    registered + approved_quick_fixes / 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_strict() {
        assert_eq!(errors_allowed(25, 0.04), 0);
        assert_eq!(errors_above_threshold(1, 25, 0.04), 1);
        assert!(error_rate_breached(1, 25, 0.04));
        assert_eq!(errors_allowed(26, 0.04), 1); // 1/26 = 3.8%
        assert!(!error_rate_breached(1, 26, 0.04));
        assert_eq!(errors_allowed(100, 0.04), 3);
        assert_eq!(errors_above_threshold(10, 100, 0.04), 7);
        assert_eq!(errors_above_threshold(0, 100, 0.04), 0);
        assert_eq!(errors_allowed(0, 0.04), 0);
        assert_eq!(volume(10, 8), 12);
    }
}
