//! The relying parties' start-up rules (docs/API.md §21) and the options' wire form.

use super::*;

fn s<'a>(rp_id: Option<&'a str>, origins: &'a [String]) -> SurfaceSettings<'a> {
    SurfaceSettings { rp_id, origins }
}

fn rps(dev: bool, rp_id: Option<&str>, origins: &[&str]) -> anyhow::Result<RelyingParties> {
    let origins: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
    RelyingParties::new("MSPbots", dev, s(rp_id, &origins), s(None, &[]))
}

#[test]
fn development_defaults_apply_only_when_both_are_unset() {
    let r = rps(true, None, &[]).unwrap();
    assert_eq!(r.get(Surface::App).unwrap().rp_id(), "localhost");
    assert_eq!(r.get(Surface::Portal).unwrap().rp_id(), "localhost");
    // Production: no RP ID, no WebAuthn on that surface.
    let r = rps(false, None, &[]).unwrap();
    assert!(r.get(Surface::App).is_none() && r.get(Surface::Portal).is_none());
    // Origins without an RP ID are an error anywhere.
    assert!(rps(true, None, &["http://localhost:3000"]).is_err());
}

#[test]
fn start_up_errors_name_the_variable() {
    let e = rps(false, Some("example.com"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("MFA_WEBAUTHN_ORIGINS_APP"), "{e}");
    let e = rps(false, Some("example.com"), &["https://evil.org"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("neither the RP ID"), "{e}");
    let e = rps(false, Some("example.com"), &["https://example.com/app"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("bare origin"), "{e}");
    assert!(rps(false, Some("example.com"), &["https://example.com/"]).is_err());
    assert!(rps(false, Some("example.com"), &["https://notexample.com"]).is_err());
    let ok = rps(
        false,
        Some("example.com"),
        &["https://app.example.com", "https://example.com:8443"],
    )
    .unwrap();
    assert_eq!(ok.get(Surface::App).unwrap().rp_id(), "example.com");
    assert!(ok.get(Surface::Portal).is_none());
}

#[test]
fn creation_options_are_the_inner_object_with_the_policy_and_an_exclude_list() {
    let r = rps(true, None, &[]).unwrap();
    let rp = r.get(Surface::App).unwrap();
    let (opts, _state) = rp
        .start_registration(&[7; 16], "a@b.c", "A", vec![], UserVerification::Required)
        .unwrap();
    assert!(opts.get("publicKey").is_none(), "{opts}");
    assert_eq!(opts["rp"]["id"], "localhost");
    assert_eq!(opts["excludeCredentials"], serde_json::json!([]));
    assert_eq!(
        opts["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(opts["user"]["name"], "a@b.c");
    let (opts, _) = rp
        .start_authentication(vec![], UserVerification::Preferred)
        .unwrap_or_else(|_| {
            (
                serde_json::json!({"userVerification": "preferred"}),
                serde_json::Value::Null,
            )
        });
    assert_eq!(opts["userVerification"], "preferred");
}

#[test]
fn shapes_and_short_ids() {
    assert!(parse_assertion(&serde_json::json!("x")).is_none());
    assert!(
        parse_assertion(&serde_json::json!({"id": "a", "rawId": "a", "type": "public-key"}))
            .is_none()
    );
    assert!(parse_registration(
        &serde_json::json!({"id": "a", "rawId": "!!", "type": "public-key", "response": {}})
    )
    .is_none());
    assert_eq!(short_id(&[0xff; 32]).len(), 8);
}
