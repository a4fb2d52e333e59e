//! What a relying party does with what the service hands out: access tokens verified with the
//! published JWKS alone, and the RFC 3339 timestamps of its answers.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::helpers::TestApp;

const ISSUER: &str = "mspbots-mfa";

/// A timestamp of an answer (RFC 3339).
pub fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("timestamp string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// The claims of `token` verified with `jwks` alone, as a relying party does: `alg: EdDSA`,
/// a published `kid`, the issuer, `audience`, the registered claims, and `exp` after `now`
/// (unix seconds: the test's clock or the wall clock). `Err` says what failed.
pub fn verify(jwks: &Value, token: &str, audience: &str, now: i64) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("JWT header: {e}"))?;
    if header.alg != Algorithm::EdDSA {
        return Err(format!("alg {:?}", header.alg));
    }
    let kid = header.kid.ok_or("no kid in the header")?;
    let jwk = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or_else(|| format!("kid {kid} is not published: {jwks}"))?;
    let x = jwk["x"].as_str().ok_or("no x")?;
    let key = DecodingKey::from_ed_components(x).map_err(|e| format!("Ed25519 x: {e}"))?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[audience]);
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    // Expiry against the given clock, not the library's.
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
        .map_err(|e| format!("does not verify for {audience}: {e}"))?
        .claims;
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if exp <= now {
        return Err(format!("expired at {exp} (now {now})"));
    }
    Ok(claims)
}

/// The claims of an access token verified with this app's published JWKS alone, by the
/// test's clock (which the service uses too); panics with the reason if it does not verify.
pub async fn jwks_claims(app: &TestApp, token: &str, audience: &str) -> Value {
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200);
    verify(&jwks.body, token, audience, app.now().timestamp())
        .unwrap_or_else(|e| panic!("token verifies with the JWKS: {e}"))
}

/// Does the token verify for this audience (with the JWKS, by the test's clock)?
pub async fn verifies_for(app: &TestApp, token: &str, audience: &str) -> bool {
    let jwks = app.get("/.well-known/jwks.json", None).await;
    verify(&jwks.body, token, audience, app.now().timestamp()).is_ok()
}
