//! Byte sizes as the command line writes them (`8192`, `64K`, `100M`, `1G`): read when a flag is
//! validated ([`crate::settings`]), and written for the defaults the help shows ([`crate::args`]).

/// As [`parse_size`], for a flag where 0 turns something off.
pub fn parse_size_or_zero(flag: &str, text: &str) -> Result<u64, String> {
    if text.trim() == "0" {
        return Ok(0);
    }
    parse_size(flag, text)
}

/// `8192`, `8K`, `64KiB`, `100M`, `1G` → bytes (K, M, G are powers of 1024).
pub fn parse_size(flag: &str, text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let multiplier: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "--{flag}: '{text}' is not a size (examples: 8192, 64K, 100M)"
            ))
        }
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("--{flag}: '{text}' is not a size (examples: 8192, 64K, 100M)"))?;
    value
        .checked_mul(multiplier)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("--{flag}: '{text}' is out of range"))
}

/// Bytes as [`parse_size`] reads them, in the largest unit that divides them: 8192 → `8K`,
/// 104857600 → `100M`, 1000 → `1000` (for the defaults in the help text).
pub fn format_size(bytes: u64) -> String {
    // Each unit as a power of two: it divides `bytes` when that many low bits are zero.
    let units = [(30, "G"), (20, "M"), (10, "K")];
    match units
        .iter()
        .find(|(shift, _)| bytes > 0 && bytes.trailing_zeros() >= *shift)
    {
        Some((shift, suffix)) => format!("{}{suffix}", bytes >> shift),
        None => bytes.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("x", "8192").unwrap(), 8192);
        assert_eq!(parse_size("x", "64K").unwrap(), 65536);
        assert_eq!(parse_size("x", "100M").unwrap(), 100 << 20);
        assert_eq!(parse_size("x", "1GiB").unwrap(), 1 << 30);
        assert!(parse_size("x", "12Q").is_err());
        assert!(parse_size("x", "0").is_err());
        assert!(parse_size("x", "").is_err());
    }

    #[test]
    fn zero_is_a_size_only_where_it_turns_something_off() {
        assert_eq!(parse_size_or_zero("x", "0").unwrap(), 0);
        assert_eq!(parse_size_or_zero("x", " 0 ").unwrap(), 0);
        assert_eq!(parse_size_or_zero("x", "64M").unwrap(), 64 << 20);
        assert!(parse_size_or_zero("x", "0K").is_err());
        assert!(parse_size_or_zero("x", "-1").is_err());
    }

    #[test]
    fn sizes_are_written_as_they_are_read() {
        assert_eq!(format_size(8 * 1024), "8K");
        assert_eq!(format_size(100 << 20), "100M");
        assert_eq!(format_size(2 << 30), "2G");
        assert_eq!(format_size(1536 << 10), "1536K");
        assert_eq!(format_size(1000), "1000");
        for bytes in [1, 1000, 1024, 1536 << 10, 64 << 10, 100 << 20, 3 << 30] {
            assert_eq!(parse_size("x", &format_size(bytes)).unwrap(), bytes);
        }
    }
}
