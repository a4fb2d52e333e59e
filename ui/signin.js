// Sign-in: "Enter the 2FA code from your authenticator app", Verify; a passkey, a recovery
// code, "Remember this browser", and "Codes keep failing?" → the two-code resync (§11).
import { h, mount, card, field, codeField, checkbox, linkButton, alertBox, notice } from './dom.js';
import { call, showError } from './api.js';
import { finish, fail } from './app.js';
import { passkeysUsable, signInWithPasskey } from './passkey.js';

function ends(err) {
  return err.code === 'unauthenticated' || err.code === 'not_found';
}

export function signIn(ctx, start) {
  const login = ctx.login;
  const types = login.factor_types || ['totp'];
  // A user with only passkeys is asked for one, not for a code they cannot have.
  const mode = start || (types.includes('totp') || !passkeysUsable() ? 'code' : 'passkey');
  const days = login.remember_device_days || 0;
  const box = alertBox();
  const remember = days > 0 && mode !== 'recovery' ? checkbox(`Remember this browser for ${days} days`) : null;
  const submit = h('button', { type: 'submit', class: 'primary' }, mode === 'passkey' ? 'Use a passkey' : 'Verify');
  const base = `/v1/logins/${ctx.loginId}`;
  let inputs;
  let heading;
  let send;
  if (mode === 'recovery') {
    heading = 'Enter a recovery code';
    const f = field('Recovery code', { autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', required: true },
      'One of the codes you saved when you set up 2FA. Each code works once.');
    inputs = [f];
    send = () => call('POST', `${base}/recover`, ctx.mfaToken, { recovery_code: f.input.value.trim() });
  } else if (mode === 'resync') {
    heading = 'Resynchronise your authenticator app';
    const a = codeField('First code');
    const b = codeField('Next code (wait until the app shows a new one)');
    inputs = [a, b];
    send = () => call('POST', `${base}/resync`, ctx.mfaToken, { code1: a.input.value.trim(), code2: b.input.value.trim() });
  } else if (mode === 'passkey') {
    heading = 'Sign in with your passkey';
    inputs = [];
    send = () => signInWithPasskey(ctx, remember && remember.input.checked);
  } else {
    heading = 'Enter the 2FA code from your authenticator app';
    const c = codeField('6-digit code');
    inputs = [c];
    send = () => {
      const body = { code: c.input.value.replace(/\s+/g, '') };
      if (remember && remember.input.checked) body.remember_device = true;
      return call('POST', `${base}/verify`, ctx.mfaToken, body);
    };
  }
  const form = h('form', { novalidate: true }, inputs.map((i) => i.wrap), remember && remember.wrap, box,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const empty = inputs.find((i) => !i.input.value.trim());
    if (empty) {
      notice(box, 'Fill in the code first.');
      empty.input.focus();
      return;
    }
    submit.disabled = true;
    try {
      finish(ctx, await send());
    } catch (err) {
      if (ends(err)) { fail(ctx, err); return; }
      showError(box, err, [submit]);
      if (err.code !== 'too_many_attempts') submit.disabled = false;
      if (inputs.length) inputs[0].input.select();
    }
  });
  const other = [];
  if (mode !== 'code' && types.includes('totp')) other.push(linkButton('Use a code from your app', () => signIn(ctx, 'code')));
  if (mode !== 'passkey' && types.includes('webauthn') && passkeysUsable()) {
    other.push(linkButton('Use a passkey', async () => {
      try {
        finish(ctx, await signInWithPasskey(ctx, remember && remember.input.checked));
      } catch (err) {
        if (ends(err)) fail(ctx, err);
        else showError(box, err, [submit]);
      }
    }));
  }
  if (mode !== 'recovery') other.push(linkButton('Use a recovery code', () => signIn(ctx, 'recovery')));
  if (mode === 'code' && types.includes('totp')) other.push(linkButton('Codes keep failing?', () => signIn(ctx, 'resync')));
  const intros = {
    resync: "If your phone's clock is off, your codes stop working. Enter two codes in a row from your app: the one shown now, then the next one.",
    passkey: 'Use the passkey or security key you set up for MSPbots: your device asks for your fingerprint, face, PIN or a touch of the key.',
  };
  const intro = intros[mode] ? h('p', { text: intros[mode] }) : null;
  mount(card(h('h1', { text: heading }), intro, form, h('div', { class: 'others' }, other)));
  if (inputs.length) inputs[0].input.focus();
}
