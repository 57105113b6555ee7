//! Output helpers shared by the listing commands.

use std::io::Write;

/// Print rows as a table with columns padded to their widest cell (as Docker does).
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Written cell by cell into `out` (a buffer): no string is made per cell or row.
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
        let mut cells = cells.enumerate().peekable();
        while let Some((i, c)) = cells.next() {
            if cells.peek().is_some() {
                write!(out, "{c:<w$}", w = widths[i] + 3)?;
            } else {
                out.write_all(c.as_bytes())?;
            }
        }
        out.write_all(b"\n")
    };
    line(&mut header.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// A size as Docker prints it (decimal units).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

/// "3 days ago" for an RFC 3339 time.
pub fn ago(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) else {
        return "N/A".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    let (n, unit) = match secs {
        s if s < 2 => return "Less than a second ago".into(),
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86400 => (s / 3600, "hour"),
        s if s < 86400 * 14 => (s / 86400, "day"),
        s if s < 86400 * 60 => (s / (86400 * 7), "week"),
        s if s < 86400 * 365 * 2 => (s / (86400 * 30), "month"),
        s => (s / (86400 * 365), "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    let n = if n == 1 && unit == "hour" {
        "About an".to_string()
    } else if n == 1 {
        "1".into()
    } else {
        n.to_string()
    };
    format!("{n} {unit}{plural} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_234_000), "1.234MB");
        assert_eq!(human_size(2_000_000_000), "2GB");
    }

    #[test]
    fn tables_pad_every_column_but_the_last_to_its_widest_cell() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a1".to_string(), "dé".to_string(), "x".to_string()],
            vec!["b".to_string(), "longer".to_string(), "yy".to_string()],
        ];
        table(&mut out, &["ID", "NAME", "LAST"], &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID   NAME     LAST\na1   dé       x\nb    longer   yy\n"
        );
    }
}
