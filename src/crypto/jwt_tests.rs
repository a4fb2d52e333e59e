//! Tests for [`super`] (kept apart so `jwt.rs` stays readable).

use super::*;
use jsonwebtoken::{DecodingKey, EncodingKey, Validation};

const ISS: &str = "https://mfa.example";
const AUD: &str = "mspbots-api";
const NOW: i64 = 1_700_000_000;

/// RFC 8410 section 10.3 example key; its public key is given in 10.1.
const RFC8410_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----";

fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        aud: AUD.into(),
        sub: crate::domain::ids::UserId::parse("user-1").unwrap(),
        tid: crate::domain::ids::TenantId::parse("tenant-1").unwrap(),
        email: "a\u{e4}@b.com".into(),
        roles: vec!["admin".into()],
        idp: "entra".into(),
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: NOW - 5,
        iat: NOW,
        exp: NOW + 900,
        jti: "jti-1".into(),
    }
}

fn keys() -> SigningKeys {
    SigningKeys::from_pems(&[generate_pem()]).unwrap()
}

fn auds() -> Vec<String> {
    vec!["other".into(), AUD.into()]
}

fn verify(k: &SigningKeys, token: &str) -> Result<AccessClaims, JwtError> {
    k.verify(token, ISS, &auds(), NOW, 60)
}

fn b64(json: &serde_json::Value) -> String {
    BASE64URL_NOPAD.encode(json.to_string().as_bytes())
}

#[test]
fn round_trip_and_header() {
    let k = keys();
    let token = k.sign(&claims()).unwrap();
    assert_eq!(verify(&k, &token).unwrap(), claims());
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid.as_deref(), Some(k.active_kid()));
    assert_eq!(k.active_kid().len(), 16);
}

#[test]
fn rfc8410_key_and_jwks() {
    let k = SigningKeys::from_pems(&[RFC8410_PEM.to_owned()]).unwrap();
    let jwks = k.jwks();
    let jwk = &jwks["keys"][0];
    let x = jwk["x"].as_str().unwrap();
    let raw = BASE64URL_NOPAD.decode(x.as_bytes()).unwrap();
    assert_eq!(
        data_encoding::HEXLOWER.encode(&raw),
        "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
    );
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], k.active_kid());
    let digest = BASE64URL_NOPAD.encode(&Sha256::digest(&raw));
    assert_eq!(k.active_kid(), &digest[..16]);
}

#[test]
fn external_verifier_with_jwks_only() {
    let k = keys();
    let token = k.sign(&claims()).unwrap();
    let jwks = k.jwks();
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let key = DecodingKey::from_ed_components(x).unwrap();
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[AUD]);
    v.set_issuer(&[ISS]);
    v.validate_exp = false;
    let got = jsonwebtoken::decode::<AccessClaims>(&token, &key, &v).unwrap();
    assert_eq!(got.claims, claims());
}

#[test]
fn generated_pem_is_standard_pkcs8() {
    let pem = generate_pem();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
    assert!(ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).is_ok());
    assert_ne!(generate_pem(), pem);
}

#[test]
fn tampered_token_rejected() {
    let k = keys();
    let token = k.sign(&claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut evil = claims();
    evil.roles = vec!["superadmin".into()];
    let body = BASE64URL_NOPAD.encode(&serde_json::to_vec(&evil).unwrap());
    let forged = format!("{}.{}.{}", parts[0], body, parts[2]);
    assert_eq!(verify(&k, &forged), Err(JwtError::BadSignature));
    let mut sig = parts[2].to_owned().into_bytes();
    sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
    let bad_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(sig).unwrap()
    );
    assert_eq!(verify(&k, &bad_sig), Err(JwtError::BadSignature));
    assert_eq!(verify(&k, &format!("{token}x")), Err(JwtError::Malformed));
    assert_eq!(verify(&k, "a.b"), Err(JwtError::Malformed));
    assert_eq!(verify(&k, ""), Err(JwtError::Malformed));
    assert_eq!(verify(&k, &format!("{token}.x")), Err(JwtError::Malformed));
}

#[test]
fn alg_none_rejected() {
    let k = keys();
    let body = BASE64URL_NOPAD.encode(&serde_json::to_vec(&claims()).unwrap());
    let token = format!("eyJhbGciOiJub25lIn0.{body}.");
    assert_eq!(
        verify(&k, &token),
        Err(JwtError::UnsupportedAlgorithm("none".into()))
    );
    let with_kid = b64(&serde_json::json!({"alg": "none", "kid": k.active_kid()}));
    let token = format!("{with_kid}.{body}.");
    assert!(matches!(
        verify(&k, &token),
        Err(JwtError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn hs256_with_public_key_rejected() {
    let k = keys();
    let jwks = k.jwks();
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let public = BASE64URL_NOPAD.decode(x.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(k.active_kid().to_owned());
    let token =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&public)).unwrap();
    assert_eq!(
        verify(&k, &token),
        Err(JwtError::UnsupportedAlgorithm("HS256".into()))
    );
}

#[test]
fn wrong_issuer_and_audience() {
    let k = keys();
    let token = k.sign(&claims()).unwrap();
    assert_eq!(
        k.verify(&token, "https://evil", &auds(), NOW, 60),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        k.verify(&token, ISS, &["other".to_owned()], NOW, 60),
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        k.verify(&token, ISS, &[], NOW, 60),
        Err(JwtError::WrongAudience)
    );
}

#[test]
fn expiry_and_leeway() {
    let k = keys();
    let token = k.sign(&claims()).unwrap();
    let exp = claims().exp;
    let at = |now, leeway| k.verify(&token, ISS, &auds(), now, leeway);
    assert!(at(exp - 1, 0).is_ok());
    assert_eq!(at(exp, 0), Err(JwtError::Expired));
    assert_eq!(at(exp + 1000, 60), Err(JwtError::Expired));
    assert!(at(exp + 30, 60).is_ok());
    assert_eq!(at(exp + 60, 60), Err(JwtError::Expired));
    // Issued in the future beyond the leeway.
    assert_eq!(at(NOW - 61, 60), Err(JwtError::IssuedInFuture));
    assert!(at(NOW - 59, 60).is_ok());
}

#[test]
fn missing_or_unknown_kid() {
    let k = keys();
    let other = keys();
    let token = other.sign(&claims()).unwrap();
    assert_eq!(verify(&k, &token), Err(JwtError::UnknownKid));

    let sk = ed25519_dalek::SigningKey::from_pkcs8_pem(&generate_pem()).unwrap();
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(sk.as_bytes());
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims(),
        &EncodingKey::from_ed_der(&der),
    )
    .unwrap();
    assert_eq!(verify(&k, &no_kid), Err(JwtError::MissingKid));
}

/// The hand-written JWS is byte for byte what `jsonwebtoken::encode` produces for the same
/// key, header and claims (Ed25519 signatures are deterministic).
#[test]
fn same_token_bytes_as_jsonwebtoken() {
    let pem = generate_pem();
    let k = SigningKeys::from_pems(std::slice::from_ref(&pem)).unwrap();
    let sk = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(sk.as_bytes());
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(k.active_kid().to_owned());
    let theirs = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_ed_der(&der)).unwrap();
    assert_eq!(k.sign(&claims()).unwrap(), theirs);
}

/// The signature covers the header too (another configured key's kid swapped in fails), and
/// a malleated signature (S + L, the same point equation) is refused.
#[test]
fn header_swap_and_malleated_signature_rejected() {
    let (a, b) = (generate_pem(), generate_pem());
    let k = SigningKeys::from_pems(&[a.clone(), b.clone()]).unwrap();
    let token = k.sign(&claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let other_kid = SigningKeys::from_pems(&[b])
        .unwrap()
        .active_kid()
        .to_owned();
    let header = serde_json::json!({"typ": "JWT", "alg": "EdDSA", "kid": other_kid});
    let swapped = format!("{}.{}.{}", b64(&header), parts[1], parts[2]);
    assert_eq!(verify(&k, &swapped), Err(JwtError::BadSignature));

    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut sig = BASE64URL_NOPAD.decode(parts[2].as_bytes()).unwrap();
    let mut carry = 0u16;
    for (s, l) in sig[32..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes");
    let malleated = format!("{}.{}.{}", parts[0], parts[1], BASE64URL_NOPAD.encode(&sig));
    assert_eq!(verify(&k, &malleated), Err(JwtError::BadSignature));
    assert_eq!(verify(&k, &token).unwrap(), claims());
}

#[test]
fn rotation_old_key_still_verifies() {
    let old_pem = generate_pem();
    let old = SigningKeys::from_pems(std::slice::from_ref(&old_pem)).unwrap();
    let token = old.sign(&claims()).unwrap();
    let rotated = SigningKeys::from_pems(&[generate_pem(), old_pem]).unwrap();
    assert_ne!(rotated.active_kid(), old.active_kid());
    assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);
    assert_eq!(verify(&rotated, &token).unwrap(), claims());
    let fresh = rotated.sign(&claims()).unwrap();
    let header = jsonwebtoken::decode_header(&fresh).unwrap();
    assert_eq!(header.kid.as_deref(), Some(rotated.active_kid()));
    assert_eq!(verify(&old, &fresh), Err(JwtError::UnknownKid));
}

#[test]
fn load_errors_and_debug() {
    let pem = generate_pem();
    assert!(SigningKeys::from_pems(&[]).is_err());
    assert!(SigningKeys::from_pems(&["garbage".into()]).is_err());
    let dup = SigningKeys::from_pems(&[pem.clone(), pem.clone()]).unwrap_err();
    assert!(dup.to_string().contains("twice"));
    let k = SigningKeys::from_pems(std::slice::from_ref(&pem)).unwrap();
    let dbg = format!("{k:?}");
    assert!(dbg.contains(k.active_kid()) && !dbg.contains(&pem[28..60]));

    let dir = std::env::temp_dir().join(format!("mfa-jwt-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.pem");
    let bad = dir.join("bad.pem");
    std::fs::write(&good, &pem).unwrap();
    std::fs::write(&bad, "nope").unwrap();
    assert!(SigningKeys::from_pem_files(std::slice::from_ref(&good)).is_ok());
    let err = SigningKeys::from_pem_files(&[good, bad]).unwrap_err();
    assert!(format!("{err:#}").contains("bad.pem"));
    let missing = SigningKeys::from_pem_files(&[dir.join("missing.pem")]).unwrap_err();
    assert!(format!("{missing:#}").contains("missing.pem"));
    std::fs::remove_dir_all(&dir).unwrap();
}
