//! OmegaConf-style `${...}` interpolation.

/// Whether a string holds an interpolation (an unescaped `${`).
pub fn has_interpolation(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(1))
        .any(|i| b[i] == b'$' && b[i + 1] == b'{' && (i == 0 || b[i - 1] != b'\\'))
}
