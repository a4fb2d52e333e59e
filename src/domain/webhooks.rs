//! Webhooks (docs/API.md §14) as pure rules: the retry schedule, which event types a webhook
//! takes, what a webhook URL may be, and which addresses a delivery may never reach.
//!
//! A delivery's life:
//!
//! ```text
//!   pending --2xx--> succeeded
//!      |  \--other / timeout--> pending (next attempt after SCHEDULE[n] ± 10 %, or later
//!      |                        when Retry-After says so, at most 24 h)
//!      \--10th failure--> failed        410 Gone: the webhook is disabled at once
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::audit::AuditType;
use super::ids::ParseError;

/// The waits after the 1st, 2nd, … failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
/// 20 h, 24 h. After the 10th attempt fails the delivery is `failed`.
pub const SCHEDULE_SECS: [u64; 9] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Failures of every delivery for this long disable the webhook.
pub const FAILING_DISABLES_AFTER: Duration = Duration::from_secs(3 * 86_400);

/// When to try again after `attempts` attempts (the one that just failed included), or
/// `None` when the delivery has failed for good. `jitter` in [-1, 1] spreads the wait by
/// ±10 %; a `Retry-After` (capped at 24 h) only ever moves the attempt later.
pub fn next_retry(attempts: u32, jitter: f64, retry_after: Option<Duration>) -> Option<Duration> {
    let idx = usize::try_from(attempts.checked_sub(1)?).ok()?;
    let base = *SCHEDULE_SECS.get(idx)? as f64;
    let spread = base * (1.0 + 0.1 * jitter.clamp(-1.0, 1.0));
    let scheduled = Duration::from_millis((spread * 1000.0).round() as u64);
    Some(match retry_after {
        Some(ra) => scheduled.max(ra.min(MAX_RETRY_AFTER)),
        None => scheduled,
    })
}

/// The value of a `Retry-After` header: delay-seconds, or an HTTP date relative to `now`
/// (unix seconds). Anything else is ignored.
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?.timestamp();
    u64::try_from(at - now_unix).ok().map(Duration::from_secs)
}

/// What a webhook subscribes to: every type (now and future), or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTypes {
    All,
    Only(Vec<AuditType>),
}

impl EventTypes {
    /// The stored and shown form: `["*"]` or the type names.
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            EventTypes::All => vec!["*".to_owned()],
            EventTypes::Only(v) => v.iter().map(|t| t.as_str().to_owned()).collect(),
        }
    }

    /// A list holding `"*"` is every type; otherwise 1–50 known audit types, duplicates
    /// dropped.
    pub fn parse(items: &[String]) -> Result<Self, ParseError> {
        if !items.is_empty() && items.len() <= 50 && items.iter().any(|s| s == "*") {
            return Ok(EventTypes::All);
        }
        if items.is_empty() || items.len() > 50 {
            return Err(ParseError("must hold 1-50 audit event types, or [\"*\"]"));
        }
        let mut out: Vec<AuditType> = Vec::new();
        for s in items {
            let t = AuditType::parse(s).ok_or(ParseError("holds an unknown event type"))?;
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Ok(EventTypes::Only(out))
    }

    pub fn matches(&self, t: AuditType) -> bool {
        match self {
            EventTypes::All => true,
            EventTypes::Only(v) => v.contains(&t),
        }
    }
}

/// A host name a resolver looks up: dot-separated labels of ASCII letters, digits and
/// hyphens, 1–63 bytes each, not starting or ending with a hyphen, hyphens in both the third
/// and fourth places only in an IDN's `xn--` label (which the URL parser has decoded and
/// checked; others are reserved, RFC 5891 §4.2.3.1); a trailing dot allowed.
/// No limit on the whole name beyond the URL's 2048 bytes: the OpenAPI `pattern` says the
/// same (a regular expression cannot bound it without a lookahead, which schema tools read
/// differently), and a name too long to resolve fails at delivery, visibly, as any other.
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && (label.get(2..4) != Some("--") || label.starts_with("xn--"))
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A webhook's URL: `https` (or `http` where allowed), with a host, no credentials, no
/// fragment, at most 2048 bytes; an IP literal is refused here already when delivery to it
/// would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub fn parse(s: &str, allow_private: bool) -> Result<Self, ParseError> {
        if s.len() > 2048 {
            return Err(ParseError("must be at most 2048 characters"));
        }
        let u = url::Url::parse(s).map_err(|_| ParseError("must be an absolute URL"))?;
        match u.scheme() {
            "https" => {}
            "http" if allow_private => {}
            _ => return Err(ParseError("must be an https URL")),
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(ParseError("must not hold credentials"));
        }
        if u.fragment().is_some() {
            return Err(ParseError("must not have a fragment"));
        }
        match u.host() {
            None => return Err(ParseError("must name a host")),
            // The URL parser lets through hosts no resolver would look up (`a.b*`, or none
            // at all): only DNS names (IDNs arrive as punycode) are delivered to.
            Some(url::Host::Domain(d)) if !is_dns_name(d) => {
                return Err(ParseError("must name a host"));
            }
            Some(_) => {}
        }
        // Normalisation may lengthen it a little (a path "/" added): the column takes 2100.
        if u.as_str().len() > 2100 {
            return Err(ParseError("must be at most 2048 characters"));
        }
        let url = Self(u);
        if url.forbidden_literal(allow_private) {
            return Err(ParseError(
                "must not point to a loopback, private, link-local or metadata address",
            ));
        }
        Ok(url)
    }

    /// Whether the host is an IP literal delivery must not reach: checked here on the way
    /// in and again before each send (a name's addresses are checked by the resolver).
    pub fn forbidden_literal(&self, allow_private: bool) -> bool {
        let ip = match self.0.host() {
            Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
            Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
            _ => return false,
        };
        !allow_private && is_forbidden(ip)
    }

    /// A URL the database holds (parsed on the way in).
    pub fn from_stored(s: &str) -> Option<Self> {
        url::Url::parse(s).ok().map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

/// Addresses a delivery never reaches unless private targets are allowed: unspecified,
/// loopback, private (RFC 1918, unique-local fc00::/7), link-local (with the cloud metadata
/// endpoints 169.254.169.254 and fd00:ec2::254; Azure's 168.63.129.16), CGNAT, broadcast,
/// multicast and the documentation and benchmarking ranges. IPv4-mapped IPv6 addresses are
/// judged as IPv4; IPv6 ranges that carry an IPv4 address to an unknown gateway (6to4,
/// Teredo, NAT64, IPv4-translated and -compatible) are refused whole.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => forbidden_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(a),
        },
    }
}

fn forbidden_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 CGNAT
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 protocol assignments
        || o == [168, 63, 129, 16] // Azure's wire server (metadata, agent)
        || o[0] >= 240 // reserved
}

fn forbidden_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local (fd00:ec2::254 among them)
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: may reach IPv4 private space
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || s[..6] == [0, 0, 0, 0, 0xffff, 0] // ::ffff:0:0/96 IPv4-translated
        || s[0] == 0x2002 // 6to4: an IPv4 address behind a relay
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: likewise
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_host_must_be_a_dns_name() {
        for bad in [
            "https://WTtkg.izI.A.E*",
            "https://a_b.example",
            "https://-a.example",
            "https://a..example",
            &format!("https://{}.example", "a".repeat(64)),
            "https://ab--c.example",
            "https://xn--a.example", // not punycode: the URL parser refuses it
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad}");
        }
        for good in [
            "https://hooks.example.com/mfa",
            "https://Hooks.Example.COM.",
            "https://bücher.example/x",
            "https://a-1.example:8443/",
            "https://a--b.example",
            "https://xn--bcher-kva.example",
            &format!("https://{}.example", "a".repeat(63)),
            // Longer than a resolver takes (253): accepted; its deliveries fail, visibly.
            &format!("https://{0}.{0}.{0}.{0}.example", "a".repeat(63)),
        ] {
            assert!(WebhookUrl::parse(good, false).is_ok(), "{good}");
        }
    }

    fn secs(d: Option<Duration>) -> Option<f64> {
        d.map(|d| d.as_secs_f64())
    }

    #[test]
    fn the_schedule_is_the_documented_one_and_ends_in_failed() {
        let expected = [
            5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0,
        ];
        for (i, want) in expected.iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap();
            assert_eq!(
                secs(next_retry(n, 0.0, None)),
                Some(*want),
                "after attempt {n}"
            );
        }
        assert_eq!(
            next_retry(10, 0.0, None),
            None,
            "failed after the 10th attempt"
        );
        assert_eq!(next_retry(0, 0.0, None), None);
    }

    #[test]
    fn jitter_spreads_by_ten_percent_at_most() {
        assert_eq!(secs(next_retry(2, 1.0, None)), Some(330.0));
        assert_eq!(secs(next_retry(2, -1.0, None)), Some(270.0));
        assert_eq!(secs(next_retry(2, 7.0, None)), Some(330.0), "clamped");
    }

    #[test]
    fn retry_after_only_moves_later_and_at_most_a_day() {
        let ra = |s| Some(Duration::from_secs(s));
        assert_eq!(secs(next_retry(1, 0.0, ra(120))), Some(120.0));
        assert_eq!(
            secs(next_retry(2, 0.0, ra(10))),
            Some(300.0),
            "never earlier"
        );
        assert_eq!(secs(next_retry(1, 0.0, ra(10 * 86_400))), Some(86_400.0));
        assert_eq!(
            next_retry(10, 0.0, ra(5)),
            None,
            "no attempt after the last"
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(" 120 ", 0),
            Some(Duration::from_secs(120))
        );
        let now = 1_614_265_330;
        assert_eq!(
            parse_retry_after("Thu, 25 Feb 2021 15:12:10 GMT", now),
            Some(Duration::from_secs(600))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Thu, 25 Feb 2021 14:00:00 GMT", now),
            None
        );
    }

    #[test]
    fn event_types_are_all_or_known_types() {
        assert_eq!(EventTypes::parse(&["*".into()]), Ok(EventTypes::All));
        let one = EventTypes::parse(&["login.succeeded".into(), "login.succeeded".into()]).unwrap();
        assert_eq!(one, EventTypes::Only(vec![AuditType::LoginSucceeded]));
        assert!(one.matches(AuditType::LoginSucceeded) && !one.matches(AuditType::UserLocked));
        assert!(EventTypes::All.matches(AuditType::WebhookDisabled));
        assert!(EventTypes::parse(&["login.nope".into()]).is_err());
        assert!(EventTypes::parse(&[]).is_err());
        assert_eq!(
            EventTypes::parse(&["*".into(), "user.locked".into()]),
            Ok(EventTypes::All)
        );
        assert_eq!(EventTypes::All.to_strings(), vec!["*"]);
    }

    #[test]
    fn urls_are_https_without_credentials() {
        assert!(WebhookUrl::parse("https://hooks.example.com/x?y=1", false).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "not a url",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest",
            "https://[::1]/",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:192.168.0.1]/",
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad}");
        }
        assert!(WebhookUrl::parse("http://127.0.0.1:8080/", true).is_ok());
        assert!(
            WebhookUrl::parse(&format!("https://a.example/{}", "x".repeat(2048)), true).is_err()
        );
        // 2048 bytes as sent; the space is percent-encoded when normalised.
        let long = format!(
            "https://a.example/{} {}",
            "x".repeat(1014),
            "x".repeat(1015)
        );
        assert_eq!(long.len(), 2048);
        assert_eq!(
            WebhookUrl::parse(&long, true).unwrap().as_str().len(),
            2050,
            "normalised"
        );
    }

    #[test]
    fn forbidden_addresses() {
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "168.63.129.16",
            "::ffff:0:7f00:1",
            "2002:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(is_forbidden(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "172.32.0.1",
            "2001:4860::8888",
        ] {
            assert!(!is_forbidden(ok.parse().unwrap()), "{ok}");
        }
    }
}
