// Passkeys and security keys (docs/API.md §16): the Level 3 JSON forms go straight through.
import { h, mount, card } from './dom.js';
import { call, ApiError } from './api.js';
import { codesPanel } from './setup.js';
import { finish } from './app.js';

export function passkeysUsable() {
  return Boolean(window.PublicKeyCredential
    && typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function'
    && typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function');
}

// A browser refusal (cancelled, timed out) reads as a credential that was not accepted.
async function create(publicKey) {
  try {
    const cred = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(publicKey) });
    return cred.toJSON();
  } catch {
    throw new ApiError(400, 'invalid_credential');
  }
}

export async function getAssertion(publicKey) {
  try {
    const cred = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(publicKey) });
    return cred.toJSON();
  } catch {
    throw new ApiError(400, 'invalid_credential');
  }
}

// "Use a passkey or security key instead" during "Setup MFA". Errors go back to the caller,
// so a cancelled or refused passkey leaves the user on the setup screen to try again.
export async function enrollPasskeyAtLogin(ctx) {
  const started = await call('POST', `/v1/logins/${ctx.loginId}/webauthn-enrollment`, ctx.mfaToken, {});
  const credential = await create(started.public_key);
  const res = await call('POST', `/v1/logins/${ctx.loginId}/webauthn-enrollment/confirm`, ctx.mfaToken, { credential });
  mount(card(h('h1', { text: 'Set Up Authentication' }),
    h('p', { text: 'Your passkey is set up.' }),
    codesPanel(res.recovery_codes || [], () => finish(ctx, res))));
}

// "Use a passkey" at sign-in.
export async function signInWithPasskey(ctx, remember) {
  const challenge = await call('POST', `/v1/logins/${ctx.loginId}/webauthn-challenge`, ctx.mfaToken, {});
  const credential = await getAssertion(challenge.public_key);
  const body = { credential };
  if (remember) body.remember_device = true;
  return call('POST', `/v1/logins/${ctx.loginId}/webauthn`, ctx.mfaToken, body);
}

// §17 with a passkey: a fresh access token.
export async function reauthWithPasskey(token) {
  const challenge = await call('POST', '/v1/me/reauthenticate/webauthn-challenge', token, {});
  const credential = await getAssertion(challenge.public_key);
  return call('POST', '/v1/me/reauthenticate', token, { credential });
}

// Security page: add a passkey; X-MFA-Code or a fresh token covers the step-up.
export async function addPasskey(token, headers = {}) {
  const started = await call('POST', '/v1/me/factors', token, { type: 'webauthn' }, headers);
  const credential = await create(started.public_key);
  return call('POST', `/v1/me/factors/${started.factor_id}/confirm`, token, { credential });
}
