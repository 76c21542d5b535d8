//! The one place writ reads the clock. The compiler takes "today" as an
//! argument; providers are told the time of a revocation.

use crate::error::CliError;
use writ_compiler::values::Date;

/// Today's date (UTC). `WRIT_TODAY=YYYY-MM-DD` fixes it, for reproducible
/// runs and tests.
pub fn today() -> Result<Date, CliError> {
    if let Ok(text) = std::env::var("WRIT_TODAY") {
        return Date::parse(&text)
            .map_err(|e| CliError::Message(format!("WRIT_TODAY=`{text}`: {e}")));
    }
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    Ok(Date::from_civil(today))
}

/// Now, as RFC 3339 in UTC to the second (`2026-11-28T12:40:00Z`).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `seconds` from now, as [`now_rfc3339`] writes times.
pub fn rfc3339_in(seconds: u32) -> String {
    let later = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(i64::from(seconds)))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    later.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
