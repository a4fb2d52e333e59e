//! Which characters free text (display names, the issuer label, roles, e-mail addresses) may
//! not hold: control characters (Cc) and format characters (Cf), which are invisible or
//! reorder what is shown (U+202E makes an authenticator label read backwards).

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The format characters of the Basic Multilingual Plane as the body of a regex character
/// class, for the `pattern`s of the API document (JSON Schema regexes have no `\p{Cf}`).
/// The server rejects every Cf character, these and the few outside the BMP.
pub const BMP_FORMAT_CLASS: &str = r"\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb";

/// Whether `c` is a control or a format character.
pub fn is_hidden(c: char) -> bool {
    c.is_control() || c.general_category() == GeneralCategory::Format
}

/// A one-line label as it is kept (a factor name, the issuer): `s` trimmed, when that is
/// 1-`max` characters with no hidden character and none that `forbidden` refuses.
pub fn trimmed_label(s: &str, max: usize, forbidden: impl Fn(char) -> bool) -> Option<String> {
    let t = s.trim();
    let fits = !t.is_empty() && t.chars().count() <= max;
    (fits && !t.chars().any(|c| is_hidden(c) || forbidden(c))).then(|| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `\uXXXX` and `\uXXXX-\uXXXX` items of a class body.
    fn class_ranges(class: &str) -> Vec<(u32, u32)> {
        let codes: Vec<&str> = class.split("\\u").skip(1).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < codes.len() {
            let lo = u32::from_str_radix(codes[i].trim_end_matches('-'), 16).unwrap();
            if codes[i].ends_with('-') {
                out.push((lo, u32::from_str_radix(codes[i + 1], 16).unwrap()));
                i += 2;
            } else {
                out.push((lo, lo));
                i += 1;
            }
        }
        out
    }

    #[test]
    fn bidi_overrides_and_invisible_characters_are_hidden() {
        for c in [
            '\u{202e}',
            '\u{202d}',
            '\u{feff}',
            '\u{200b}',
            '\u{200d}',
            '\u{2066}',
            '\u{ad}',
            '\u{e0041}',
            '\0',
            '\n',
            '\u{85}',
        ] {
            assert!(is_hidden(c), "{:04x}", c as u32);
        }
        for c in ['a', 'Ä', ' ', '-', '☃', '中', '\u{00a0}'] {
            assert!(!is_hidden(c), "{:04x}", c as u32);
        }
    }

    #[test]
    fn the_documented_class_is_exactly_the_bmp_format_characters() {
        let ranges = class_ranges(BMP_FORMAT_CLASS);
        for cp in 0..=0xffff_u32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let listed = ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp));
            let format = c.general_category() == GeneralCategory::Format;
            assert_eq!(listed, format, "U+{cp:04X}");
        }
    }
}
