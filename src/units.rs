//! One size grammar for flags, environment and configuration, and one way to print sizes.
//!
//! `512M`, `1G`, `1Gi`, `1.5GB`, `300KiB`, `4096`: a number (decimals allowed) with an optional
//! unit `K`, `M`, `G`, `T`, each optionally followed by `i`, `B` or `iB`, case-insensitive.
//! Units are binary (`1G` = `1Gi` = 1024³ bytes), as Cloud Foundry reads `1G` and as
//! Kubernetes users write `1Gi`; a bare number is bytes. Output is IEC: `300.0 MiB`.

/// Parses a size; the error says what was expected.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a size like 512M, 1G, 1Gi or 1.5GB");
    let t = s.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let t = t.strip_suffix('I').unwrap_or(t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, 'K')) => (&t[..i], 10),
        Some((i, 'M')) => (&t[..i], 20),
        Some((i, 'G')) => (&t[..i], 30),
        Some((i, 'T')) => (&t[..i], 40),
        _ if t.len() < s.trim().len() && !s.trim().ends_with(['b', 'B']) => return Err(bad()),
        _ => (t, 0),
    };
    let num = num.trim();
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let unit = 1u64 << shift;
    match num.split_once('.') {
        None => num
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .ok_or_else(bad),
        Some((whole, frac)) => {
            let whole: u64 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| bad())?
            };
            if frac.is_empty() || frac.len() > 9 || frac.contains('.') {
                return Err(bad());
            }
            let digits: u64 = frac.parse().map_err(|_| bad())?;
            let scale = 10u64.pow(frac.len() as u32);
            let part = (digits as u128 * unit as u128 / scale as u128) as u64;
            whole
                .checked_mul(unit)
                .and_then(|w| w.checked_add(part))
                .ok_or_else(bad)
        }
    }
}

/// A size as people read it: `512 B`, `1.5 KiB`, `300.0 MiB`, `2.00 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = if value >= 100.0 { 1 } else { 2 };
    format!("{value:.decimals$} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar() {
        for (text, bytes) in [
            ("512M", 512 << 20),
            ("1G", 1 << 30),
            ("1Gi", 1 << 30),
            ("1GiB", 1 << 30),
            ("1gb", 1 << 30),
            ("1.5GB", 3 << 29),
            ("0.5K", 512),
            ("300KiB", 300 << 10),
            ("4096", 4096),
            ("4096B", 4096),
            (" 2T ", 2 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "G", "1X", "1.2.3G", "-1M", "1 G B", "1i", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn iec_output() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.50 KiB");
        assert_eq!(format_size(157_286_413), "150.0 MiB");
        assert_eq!(format_size(2 << 30), "2.00 GiB");
    }
}
