// Entry point: takes the hand-off out of the fragment, then shows the screen it asks for.
import { takeFragment, handOff } from './handoff.js';
import { call, sentence, ApiError } from './api.js';
import { h, mount, card } from './dom.js';
import { welcome } from './welcome.js';
import { signIn } from './signin.js';
import { security } from './security.js';
import { admin } from './admin.js';

const params = takeFragment();

// The end of a sign-in: hand the result over, or say where the user stands.
export function finish(ctx, result) {
  const message = {
    type: 'mspbots-mfa:done',
    status: result.status || 'authenticated',
    access_token: result.access_token,
    expires_in: result.expires_in,
    device_token: result.device_token,
    device_expires_at: result.device_expires_at,
  };
  const how = handOff(message, ctx.returnTo);
  mount(card(
    h('h1', { text: 'You are signed in' }),
    h('p', { text: how === 'returned' ? 'Taking you back…' : 'You can close this window and go back to MSPbots.' }),
  ));
}

// A failure that ends the flow: tell the embedding page, and the user.
export function fail(ctx, err) {
  const expired = err instanceof ApiError && (err.code === 'unauthenticated' || err.code === 'not_found');
  handOff({ type: 'mspbots-mfa:error', code: expired ? 'expired' : (err.code || 'internal') }, ctx.returnTo);
  mount(card(
    h('h1', { text: expired ? 'This sign-in has expired' : 'Sign-in cannot continue' }),
    h('p', { role: 'alert', class: 'alert error', text: expired
      ? 'Sign-ins last 10 minutes and end after too many wrong codes. Go back to the MSPbots sign-in page and sign in again.'
      : sentence(err) }),
  ));
}

async function start() {
  const ctx = {
    mfaToken: params.mfa_token,
    loginId: params.login_id,
    returnTo: params.return_to,
    accessToken: params.access_token,
    view: params.view,
  };
  if (ctx.mfaToken && ctx.loginId) {
    try {
      ctx.login = await call('GET', `/v1/logins/${encodeURIComponent(ctx.loginId)}`, ctx.mfaToken);
    } catch (err) {
      fail(ctx, err);
      return;
    }
    if (ctx.login.status === 'enrollment_required') welcome(ctx);
    else if (ctx.login.status === 'verification_required') signIn(ctx);
    else fail(ctx, new ApiError(409, 'invalid_state'));
    return;
  }
  if (ctx.accessToken) {
    if (ctx.view === 'admin') admin(ctx);
    else security(ctx);
    return;
  }
  mount(card(
    h('h1', { text: 'MSPbots two-factor authentication' }),
    h('p', { text: 'Open this page from the MSPbots sign-in or from your account settings.' }),
  ));
}

start();
