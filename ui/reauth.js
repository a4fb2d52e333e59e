// "Confirm it's you": one re-authentication (§17) before the first sensitive action of a
// page; the fresh token then covers the next few minutes of actions.
import { h, field, codeField, button, linkButton, alertBox, notice } from './dom.js';
import { call, showError } from './api.js';
import { passkeysUsable, reauthWithPasskey } from './passkey.js';

const FRESH_MS = 4 * 60 * 1000;

// Resolves to the headers a sensitive call needs (none after §17), or null when cancelled.
export function confirmIdentity(ctx) {
  if (ctx.freshUntil && Date.now() < ctx.freshUntil) return Promise.resolve({});
  return new Promise((resolve) => {
    // A user without an app is asked for a passkey first (§17's {credential}); a recovery
    // code remains for everyone.
    const keyFirst = ctx.hasPasskey && ctx.hasApp === false && passkeysUsable();
    let mode = keyFirst ? 'passkey' : 'code';
    const box = alertBox();
    const code = codeField('6-digit code from your authenticator app');
    const rc = field('Recovery code', { autocomplete: 'off', spellcheck: 'false' });
    code.wrap.hidden = mode !== 'code';
    rc.wrap.hidden = true;
    const ok = h('button', { type: 'submit', class: 'primary', hidden: mode === 'passkey' }, 'Confirm');
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'reauth-title' });
    const close = (value) => { dialog.close(); dialog.remove(); resolve(value); };
    const back = keyFirst ? 'passkey' : 'code';
    const switcher = linkButton('Use a recovery code', () => {
      mode = mode === 'recovery' ? back : 'recovery';
      code.wrap.hidden = mode !== 'code';
      rc.wrap.hidden = mode !== 'recovery';
      ok.hidden = mode === 'passkey';
      switcher.textContent = mode === 'recovery' ? (keyFirst ? 'Use your passkey' : 'Use a code from your app') : 'Use a recovery code';
      if (mode !== 'passkey') (mode === 'code' ? code.input : rc.input).focus();
    });
    const done = (res) => {
      if (res && res.access_token) ctx.accessToken = res.access_token;
      ctx.freshUntil = Date.now() + FRESH_MS;
      close({});
    };
    // One ceremony at a time; after a refusal the button is back for another try.
    const usePasskey = async () => {
      passkey.disabled = true;
      try {
        done(await reauthWithPasskey(ctx.accessToken));
      } catch (err) {
        showError(box, err, [ok, passkey]);
        if (err.code !== 'too_many_attempts') { passkey.disabled = false; passkey.focus(); }
      }
    };
    const passkey = ctx.hasPasskey && passkeysUsable()
      ? (keyFirst ? button('Use a passkey', usePasskey, 'primary') : linkButton('Use a passkey', usePasskey))
      : null;
    const form = h('form', { novalidate: true }, code.wrap, rc.wrap, box,
      h('div', { class: 'actions' }, keyFirst ? passkey : null, ok, button('Cancel', () => close(null))));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (mode === 'passkey') return;
      const value = (mode === 'code' ? code.input : rc.input).value.trim();
      if (!value) { notice(box, 'Fill in the code first.'); return; }
      const body = mode === 'code' ? { code: value } : { recovery_code: value };
      ok.disabled = true;
      try {
        done(await call('POST', '/v1/me/reauthenticate', ctx.accessToken, body));
      } catch (err) {
        if (err.code === 'not_found' || err.code === 'method_not_allowed') {
          // A service without §17: the code goes with the action itself (v1 step-up).
          close({ 'X-MFA-Code': value });
          return;
        }
        showError(box, err, [ok]);
        if (err.code !== 'too_many_attempts') ok.disabled = false;
      }
    });
    dialog.append(
      h('h2', { id: 'reauth-title', text: "Confirm it's you" }),
      h('p', { text: keyFirst ? 'Use your passkey or security key to continue.' : 'Enter a code from your authenticator app to continue.' }),
      form, h('div', { class: 'others' }, switcher, keyFirst ? null : passkey));
    dialog.addEventListener('cancel', (ev) => { ev.preventDefault(); close(null); });
    document.body.append(dialog);
    dialog.showModal();
    if (mode === 'code') code.input.focus();
    else if (passkey) passkey.focus();
  });
}
