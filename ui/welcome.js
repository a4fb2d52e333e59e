// "Welcome to MSPbots": Setup MFA, and Set up later inside a grace period.
import { h, mount, card, button, alertBox } from './dom.js';
import { call, showError } from './api.js';
import { setup } from './setup.js';
import { finish, fail } from './app.js';

export function daysLeft(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  return Math.max(0, Math.ceil(ms / 86400000));
}

export function welcome(ctx) {
  const box = alertBox();
  const grace = ctx.login.grace_ends_at;
  let later = null;
  if (grace) {
    const days = daysLeft(grace);
    later = button('Set up later', async () => {
      try {
        const res = await call('POST', `/v1/logins/${ctx.loginId}/skip-enrollment`, ctx.mfaToken);
        finish(ctx, res);
      } catch (err) {
        if (err.code === 'unauthenticated' || err.code === 'not_found') fail(ctx, err);
        else showError(box, err);
      }
    });
    later = h('div', {},
      later,
      h('p', { class: 'hint', text: `${days} ${days === 1 ? 'day' : 'days'} left to set up 2FA.` }));
  }
  mount(card(
    h('h1', { text: 'Welcome to MSPbots' }),
    h('p', { text: 'Your organisation requires two-factor authentication (2FA). You need an authenticator app on your phone, such as Microsoft Authenticator, Google Authenticator or LastPass Authenticator.' }),
    box,
    h('div', { class: 'actions' }, button('Setup MFA', () => setup(ctx), 'primary')),
    later,
  ));
}
