//! Bare web origins (`scheme://host[:port]`) for the settings of the pages under `/ui/`
//! (docs/API.md §19, §21): anything else — a path, a query, a trailing slash, user info, a
//! scheme other than http(s) — is a start-up error, never silently trimmed.

/// Parses one bare origin; the error names what is wrong with it.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim();
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("not a bare origin (scheme://host[:port]): {s:?}"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("an origin must be http or https: {s:?}"));
    }
    let bad = |c: char| {
        matches!(
            c,
            '/' | '?' | '#' | '@' | '\\' | '*' | '"' | '<' | '>' | '\'' | '&'
        ) || c.is_whitespace()
            || c.is_control()
    };
    if rest.is_empty() || rest.contains(bad) {
        return Err(format!(
            "not a bare origin (no path, query, fragment, user or trailing slash): {s:?}"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (rest, None),
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if host.is_empty() {
        return Err(format!("an origin needs a host: {s:?}"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |n| n == 0) {
            return Err(format!("bad port in origin {s:?}"));
        }
    }
    Ok(format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::parse_origin;

    #[test]
    fn bare_origins_pass_and_everything_else_is_refused() {
        assert_eq!(
            parse_origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        assert!(parse_origin("http://[::1]:8080").is_ok());
        for bad in [
            "https://a.example/",
            "https://a.example/path",
            "https://a.example?x=1",
            "https://a.example#f",
            "https://u@a.example",
            "ftp://a.example",
            "a.example",
            "https://",
            "https://a.example:0",
            "https://a.example:99999",
            "*",
            "https://a.example:",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} passed");
        }
    }
}
