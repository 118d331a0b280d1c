//! Sizes as Cloud Foundry writes them (`cf push -m 512M`, `memory: 1G` in a manifest): `K`,
//! `M`, `G`, `T` with an optional `B`, powers of 1024, any case; a bare number is megabytes.
//! Pure: the CLI's flags and the app manifest parser share it.

/// Bytes from `512M`, `1G`, `100K`, `1T`, `256MB`; a bare number is megabytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'M')) => (&t[..i], 1 << 20),
        Some((i, 'G')) => (&t[..i], 1 << 30),
        Some((i, 'T')) => (&t[..i], 1 << 40),
        _ => (t, 1 << 20),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 512M or 1G"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("256MB").unwrap(), 256 << 20);
        assert_eq!(parse_size("100").unwrap(), 100 << 20);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
