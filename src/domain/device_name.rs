//! The default name of a remembered browser (docs/API.md §12): "Chrome on Windows" from its
//! User-Agent, so a user can tell their devices apart without having typed a name.

use super::text::is_hidden;

/// `"<browser> on <system>"` when the User-Agent names both, else the User-Agent itself
/// cleaned of control and format characters and cut to 64 characters; "Unknown browser"
/// when there is none.
pub fn from_user_agent(ua: Option<&str>) -> String {
    let ua = ua.unwrap_or_default();
    // Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", iOS says "Mac OS X".
    let browsers = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    let systems = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let browser = browsers.iter().find(|(k, _)| ua.contains(k)).map(|b| b.1);
    let system = systems.iter().find(|(k, _)| ua.contains(k)).map(|s| s.1);
    if let (Some(b), Some(s)) = (browser, system) {
        return format!("{b} on {s}");
    }
    let cleaned: String = ua.chars().filter(|c| !is_hidden(*c)).take(64).collect();
    match cleaned.trim() {
        "" => "Unknown browser".to_owned(),
        t => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_common_browsers() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on Windows"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari on macOS"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0 Mobile/15E148 Safari/604.1", "Chrome on iPhone"),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36", "Chrome on Android"),
        ];
        for (ua, name) in cases {
            assert_eq!(from_user_agent(Some(ua)), name, "{ua}");
        }
    }

    #[test]
    fn falls_back_to_the_cleaned_user_agent() {
        assert_eq!(from_user_agent(None), "Unknown browser");
        assert_eq!(from_user_agent(Some(" \u{202e} ")), "Unknown browser");
        assert_eq!(from_user_agent(Some("curl/8.5.0")), "curl/8.5.0");
        let long = "x".repeat(100);
        assert_eq!(from_user_agent(Some(&long)).chars().count(), 64);
        assert_eq!(from_user_agent(Some("my\u{0}tool")), "mytool");
    }
}
