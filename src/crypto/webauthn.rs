//! WebAuthn (docs/API.md §16, §21): one relying party per surface around `webauthn-rs-core`,
//! the options in their WebAuthn Level 3 JSON form (the inner `publicKey` object), and the
//! checks of a registration or an assertion against a stored state and credential.
//!
//! What this wrapper settles and the library does not: the state is built with the
//! `preferred` user-verification policy and the tenant's policy is written into the options
//! and enforced by the caller on the result (the policy in force when the response arrives is
//! the one applied, §21); an assertion is checked against the credential as the consuming
//! transaction read it (its counter and flags), never the copy a state took at the challenge;
//! `excludeCredentials` is always present. Nothing here logs: the library's own targets are
//! held at `warn` (`telemetry`), and a credential id leaves only through [`short_id`].

use std::time::Duration;

use data_encoding::BASE64URL_NOPAD;
use url::Url;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AuthenticationResult, AuthenticationState, AuthenticatorTransport, RegistrationState,
    UserVerificationPolicy,
};
use webauthn_rs_core::WebauthnCore;

pub use webauthn_rs_core::proto::{Credential, PublicKeyCredential, RegisterPublicKeyCredential};

use crate::domain::ids::{Surface, UserVerification};

/// How long a challenge lives (and what the options' `timeout` says).
pub const CHALLENGE_SECONDS: i64 = 300;

/// One surface's settings as configured.
pub struct SurfaceSettings<'a> {
    pub rp_id: Option<&'a str>,
    pub origins: &'a [String],
}

/// The relying parties of both surfaces; `None` where WebAuthn is unavailable.
pub struct RelyingParties {
    app: Option<RelyingParty>,
    portal: Option<RelyingParty>,
}

/// One relying party: its RP ID and the verifier for its origins.
pub struct RelyingParty {
    rp_id: String,
    core: WebauthnCore,
}

/// Why a response did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The counter did not grow (§16: a cloned key).
    CounterRegressed,
    /// Anything else: signature, origin, RP ID, challenge, type, flags.
    Invalid,
}

impl std::fmt::Debug for RelyingParties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = |rp: &Option<RelyingParty>| rp.as_ref().map(|r| r.rp_id.clone());
        f.debug_struct("RelyingParties")
            .field("app", &id(&self.app))
            .field("portal", &id(&self.portal))
            .finish()
    }
}

impl RelyingParties {
    /// Builds both relying parties, or the §21 start-up error. `development` gives a surface
    /// with neither an RP ID nor origins the RP ID `localhost` and any `http://localhost` port.
    pub fn new(
        rp_name: &str,
        development: bool,
        app: SurfaceSettings<'_>,
        portal: SurfaceSettings<'_>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            app: RelyingParty::new(rp_name, development, Surface::App, app)?,
            portal: RelyingParty::new(rp_name, development, Surface::Portal, portal)?,
        })
    }

    pub fn get(&self, surface: Surface) -> Option<&RelyingParty> {
        match surface {
            Surface::App => self.app.as_ref(),
            Surface::Portal => self.portal.as_ref(),
        }
    }
}

/// A configured origin: `scheme://host[:port]` with nothing after it, whose host is the RP ID
/// or a subdomain of it.
fn parse_origin(var: &str, rp_id: &str, origin: &str) -> anyhow::Result<Url> {
    let origin = origin.trim();
    let url = Url::parse(origin).map_err(|e| anyhow::anyhow!("{var}: {origin:?}: {e}"))?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.path() == "/"
        && !origin.ends_with('/');
    anyhow::ensure!(
        bare,
        "{var}: {origin:?} is not a bare origin (scheme://host[:port], no path)"
    );
    let host = url.host_str().unwrap_or_default();
    anyhow::ensure!(
        host == rp_id || host.ends_with(&format!(".{rp_id}")),
        "{var}: the host of {origin:?} is neither the RP ID {rp_id:?} nor a subdomain of it"
    );
    Ok(url)
}

impl RelyingParty {
    fn new(
        rp_name: &str,
        development: bool,
        surface: Surface,
        s: SurfaceSettings<'_>,
    ) -> anyhow::Result<Option<Self>> {
        let upper = surface.as_str().to_ascii_uppercase();
        let (id_var, origins_var) = (
            format!("MFA_WEBAUTHN_RP_ID_{upper}"),
            format!("MFA_WEBAUTHN_ORIGINS_{upper}"),
        );
        let origins: Vec<&str> = s
            .origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .collect();
        let rp_id = s.rp_id.map(str::trim).filter(|r| !r.is_empty());
        let (rp_id, urls, any_port) = match (rp_id, origins.is_empty()) {
            (None, true) if development => (
                "localhost".to_owned(),
                vec![Url::parse("http://localhost")?],
                true,
            ),
            (None, true) => return Ok(None),
            (None, false) => anyhow::bail!("{origins_var} is set but {id_var} is not"),
            (Some(_), true) if !development => {
                anyhow::bail!("{id_var} is set but {origins_var} is not: list the origins")
            }
            (Some("localhost"), true) => (
                "localhost".to_owned(),
                vec![Url::parse("http://localhost")?],
                true,
            ),
            (Some(rp_id), true) => {
                let url = parse_origin(&origins_var, rp_id, &format!("https://{rp_id}"))?;
                (rp_id.to_owned(), vec![url], false)
            }
            (Some(rp_id), false) => {
                let urls = origins
                    .iter()
                    .map(|o| parse_origin(&origins_var, rp_id, o))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                (rp_id.to_owned(), urls, false)
            }
        };
        anyhow::ensure!(
            !rp_id.contains(['/', ':']) && Url::parse(&format!("https://{rp_id}")).is_ok(),
            "{id_var}: {rp_id:?} is not a domain name"
        );
        let core = WebauthnCore::new_unsafe_experts_only(
            rp_name,
            &rp_id,
            urls,
            Duration::from_secs(CHALLENGE_SECONDS as u64),
            Some(false),
            Some(any_port),
        );
        Ok(Some(Self { rp_id, core }))
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Creation options (the inner `publicKey` object) and the state to keep. `exclude` is
    /// listed whatever its length.
    pub fn start_registration(
        &self,
        user_handle: &[u8],
        name: &str,
        display_name: &str,
        exclude: Vec<Vec<u8>>,
        uv: UserVerification,
    ) -> anyhow::Result<(serde_json::Value, serde_json::Value)> {
        let builder = self
            .core
            .new_challenge_register_builder(user_handle, name, display_name)?
            .user_verification_policy(UserVerificationPolicy::Preferred)
            .exclude_credentials(Some(exclude));
        let (ccr, state) = self.core.generate_challenge_register(builder)?;
        let mut options = ccr.public_key;
        if let Some(sel) = options.authenticator_selection.as_mut() {
            sel.user_verification = policy(uv);
        }
        Ok((serde_json::to_value(options)?, serde_json::to_value(state)?))
    }

    /// Checks a registration response against its state: the new credential, or a refusal.
    /// The caller enforces the user-verification policy on `user_verified`.
    pub fn finish_registration(
        &self,
        response: &RegisterPublicKeyCredential,
        state: &serde_json::Value,
    ) -> anyhow::Result<Result<Credential, Refusal>> {
        let state: RegistrationState = serde_json::from_value(state.clone())?;
        Ok(self
            .core
            .register_credential(response, &state, None)
            .map_err(|_| Refusal::Invalid))
    }

    /// Request options (the inner `publicKey` object, `allowCredentials` with each credential's
    /// transports) and the state to keep.
    pub fn start_authentication(
        &self,
        credentials: Vec<Credential>,
        uv: UserVerification,
    ) -> anyhow::Result<(serde_json::Value, serde_json::Value)> {
        let builder = self.core.new_challenge_authenticate_builder(
            credentials,
            Some(UserVerificationPolicy::Preferred),
        )?;
        let (rcr, mut state) = self.core.generate_challenge_authenticate(builder)?;
        // The state keeps the challenge only: the credential is read again when the answer
        // comes.
        state.set_allowed_credentials(Vec::new());
        let mut options = rcr.public_key;
        options.user_verification = policy(uv);
        Ok((serde_json::to_value(options)?, serde_json::to_value(state)?))
    }

    /// Checks an assertion against its state and the credential as stored now.
    pub fn finish_authentication(
        &self,
        response: &PublicKeyCredential,
        state: &serde_json::Value,
        stored: &Credential,
    ) -> anyhow::Result<Result<AuthenticationResult, Refusal>> {
        let state: AuthenticationState = serde_json::from_value(state.clone())?;
        Ok(self
            .core
            .authenticate_single_credential(response, &state, stored)
            .map_err(|e| match e {
                WebauthnError::CredentialPossibleCompromise => Refusal::CounterRegressed,
                _ => Refusal::Invalid,
            }))
    }
}

fn policy(uv: UserVerification) -> UserVerificationPolicy {
    match uv {
        UserVerification::Preferred => UserVerificationPolicy::Preferred,
        UserVerification::Required => UserVerificationPolicy::Required,
    }
}

/// A registration response in `RegistrationResponseJSON` form, or `None` (a shape error).
pub fn parse_registration(v: &serde_json::Value) -> Option<RegisterPublicKeyCredential> {
    has_envelope(v)
        .then(|| serde_json::from_value(v.clone()).ok())
        .flatten()
}

/// An assertion in `AuthenticationResponseJSON` form, or `None` (a shape error).
pub fn parse_assertion(v: &serde_json::Value) -> Option<PublicKeyCredential> {
    has_envelope(v)
        .then(|| serde_json::from_value(v.clone()).ok())
        .flatten()
}

/// §21's shape: an object with `id`, `rawId`, `type` and `response`.
fn has_envelope(v: &serde_json::Value) -> bool {
    v.as_object().is_some_and(|o| {
        ["id", "rawId", "type"]
            .iter()
            .all(|k| o.get(*k).is_some_and(serde_json::Value::is_string))
            && o.get("response").is_some_and(serde_json::Value::is_object)
    })
}

/// A credential id as it may be shown: its first 8 base64url characters.
pub fn short_id(cred_id: &[u8]) -> String {
    BASE64URL_NOPAD.encode(cred_id).chars().take(8).collect()
}

/// Transports as stored (`usb`, `nfc`, `ble`, `internal`, `hybrid`, …).
pub fn transports_text(t: &Option<Vec<AuthenticatorTransport>>) -> Vec<String> {
    t.iter()
        .flatten()
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Stored transports back into the library's form (unknown ones are dropped).
pub fn transports_from_text(t: &[String]) -> Option<Vec<AuthenticatorTransport>> {
    Some(
        t.iter()
            .filter_map(|s| serde_json::from_value(serde_json::Value::String(s.clone())).ok())
            .collect(),
    )
}

#[cfg(test)]
#[path = "webauthn_tests.rs"]
mod tests;
