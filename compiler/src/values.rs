//! Durations and calendar dates, as the language writes them.

use serde::Serialize;
use std::fmt;

/// A length of time, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Duration(pub u64);

pub const MINUTE: u64 = 60;
pub const HOUR: u64 = 60 * MINUTE;
pub const DAY: u64 = 24 * HOUR;

impl Duration {
    pub fn seconds(self) -> u64 {
        self.0
    }

    /// Parses `15m`, `1h30m`, `90d`. Zero and overflow are errors.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut saw_unit = false;
        for character in text.chars() {
            if character.is_ascii_digit() {
                digits.push(character);
                continue;
            }
            let unit = match character {
                's' => 1,
                'm' => MINUTE,
                'h' => HOUR,
                'd' => DAY,
                other => {
                    return Err(format!(
                        "`{other}` is not a unit of time; use `s`, `m`, `h` or `d`"
                    ))
                }
            };
            if digits.is_empty() {
                return Err("each unit needs a number before it, as in `1h30m`".into());
            }
            let amount: u64 = digits
                .parse()
                .map_err(|_| "the number is too large".to_string())?;
            total = amount
                .checked_mul(unit)
                .and_then(|part| total.checked_add(part))
                .ok_or_else(|| "the duration is too long".to_string())?;
            digits.clear();
            saw_unit = true;
        }
        if !digits.is_empty() || !saw_unit {
            return Err("a duration needs a unit (`s`, `m`, `h` or `d`), as in `15m`".into());
        }
        if total == 0 {
            return Err("a duration of zero cannot be enforced".into());
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    /// The shortest canonical spelling: `1h30m`, `90d`, `45s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, suffix) in [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (1, "s")] {
            if rest >= unit {
                write!(f, "{}{suffix}", rest / unit)?;
                rest %= unit;
            }
        }
        Ok(())
    }
}

/// A calendar date; it means 00:00:00 UTC of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD` and requires a real calendar date.
    pub fn parse(text: &str) -> Result<Date, String> {
        let bytes = text.as_bytes();
        let shape_ok = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shape_ok {
            return Err("a date is written `YYYY-MM-DD`".into());
        }
        let year: i32 = text[0..4].parse().map_err(|_| "bad year".to_string())?;
        let month: u8 = text[5..7].parse().map_err(|_| "bad month".to_string())?;
        let day: u8 = text[8..10].parse().map_err(|_| "bad day".to_string())?;
        if !(1..=12).contains(&month) {
            return Err(format!("there is no month {month}"));
        }
        // The calendar is jiff's; only the message is writ's.
        let first = jiff::civil::Date::new(year as i16, month as i8, 1)
            .map_err(|_| format!("the year {year} is out of range"))?;
        let last = first.days_in_month() as u8;
        if day == 0 || day > last {
            return Err(format!(
                "{} has {last} days in {year}",
                MONTH_NAMES[month as usize - 1]
            ));
        }
        Ok(Date { year, month, day })
    }

    /// The same day as jiff's civil date.
    pub fn from_civil(date: jiff::civil::Date) -> Date {
        Date {
            year: i32::from(date.year()),
            month: date.month() as u8,
            day: date.day() as u8,
        }
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(self) -> i64 {
        let civil = |year: i32, month: u8, day: u8| {
            jiff::civil::Date::new(
                i16::try_from(year).unwrap_or(i16::MAX),
                month as i8,
                day as i8,
            )
        };
        match (civil(self.year, self.month, self.day), civil(1970, 1, 1)) {
            (Ok(date), Ok(epoch)) => epoch
                .until((jiff::Unit::Day, date))
                .map_or(0, |span| i64::from(span.get_days())),
            // Only `parse` and jiff make dates, and both make real ones.
            _ => 0,
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_canonically() {
        assert_eq!(Duration::parse("15m"), Ok(Duration(900)));
        assert_eq!(Duration::parse("1h30m"), Ok(Duration(5400)));
        assert_eq!(
            Duration::parse("90d").map(|d| d.to_string()),
            Ok("90d".into())
        );
        assert_eq!(Duration(5400).to_string(), "1h30m");
        assert_eq!(
            Duration::parse("60m").map(|d| d.to_string()),
            Ok("1h".into())
        );
        assert!(Duration::parse("0h").is_err());
        assert!(Duration::parse("15").is_err());
        assert!(Duration::parse("1x").is_err());
        assert!(Duration::parse("99999999999999999999d").is_err());
    }

    #[test]
    fn dates_must_be_real_calendar_days() {
        assert_eq!(
            Date::parse("2027-06-30"),
            Ok(Date {
                year: 2027,
                month: 6,
                day: 30
            })
        );
        assert!(Date::parse("2027-02-29").is_err());
        assert!(Date::parse("2028-02-29").is_ok());
        assert!(Date::parse("2027-13-01").is_err());
        assert!(Date::parse("2027-6-30").is_err());
    }

    #[test]
    fn date_epoch_conversions_round_trip() {
        assert_eq!(Date::parse("1970-01-01").unwrap().days_since_epoch(), 0);
        let epoch = jiff::civil::date(1970, 1, 1);
        for days in [-800_000i64, -1, 0, 1, 59, 365, 20_000, 2_000_000] {
            let date = Date::from_civil(epoch.checked_add(jiff::Span::new().days(days)).unwrap());
            assert_eq!(date.days_since_epoch(), days, "{date}");
        }
        assert_eq!(
            Date::from_civil(jiff::civil::date(2027, 1, 15)).to_string(),
            "2027-01-15"
        );
        assert_eq!(
            Date::parse("2028-03-01").unwrap().days_since_epoch()
                - Date::parse("2028-02-28").unwrap().days_since_epoch(),
            2
        );
    }
}
