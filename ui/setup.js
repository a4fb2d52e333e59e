// "Set Up Authentication": the QR code, Next, the 6-digit code, Verify, the recovery codes.
import { h, mount, card, button, linkButton, alertBox, codeField, checkbox, copyButton, notice } from './dom.js';
import { call, showError } from './api.js';
import { finish, fail } from './app.js';
import { passkeysUsable, enrollPasskeyAtLogin } from './passkey.js';
import { framed } from './handoff.js';

export function groupKey(secret) {
  return secret.match(/.{1,4}/g).join(' ');
}

// Step 1: the QR code, "Can't scan it?" with the key, and Next.
export function qrPanel(material, onNext) {
  const status = alertBox();
  const keyId = 'manual-key';
  const key = h('div', { id: keyId, class: 'key', hidden: true },
    h('p', { text: 'Type this key into your authenticator app (time-based, 6 digits):' }),
    h('p', { class: 'secret', text: groupKey(material.secret) }),
    copyButton('Copy key', () => material.secret, status));
  const toggle = linkButton("Can't scan it?", () => {
    key.hidden = !key.hidden;
    toggle.setAttribute('aria-expanded', String(!key.hidden));
  }, { 'aria-controls': keyId, 'aria-expanded': 'false' });
  return h('div', {},
    h('ol', { class: 'steps' },
      h('li', { text: 'Open your authenticator app and tap + Add.' }),
      h('li', { text: 'Choose the type of account, then Scan a QR code.' }),
      h('li', { text: 'Scan this code, then click Next.' })),
    h('img', { class: 'qr', src: material.qr_png, alt: `QR code to add ${material.account_name} to your authenticator app`, width: '220', height: '220' }),
    h('div', {}, toggle),
    key,
    status,
    h('div', { class: 'actions' }, button('Next', onNext, 'primary')));
}

// Step 2: the code and Verify. submit(code, remember) returns a promise.
export function codePanel(submit, rememberDays) {
  const box = alertBox();
  const { wrap, input } = codeField('Enter the 6-digit code from your authenticator app');
  const remember = rememberDays > 0 ? checkbox(`Remember this browser for ${rememberDays} days`) : null;
  const verify = h('button', { type: 'submit', class: 'primary' }, 'Verify');
  const form = h('form', { novalidate: true }, wrap, remember && remember.wrap, box,
    h('div', { class: 'actions' }, verify));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const code = input.value.replace(/\s+/g, '');
    if (!/^[0-9]{6}$/.test(code)) {
      notice(box, 'Enter the 6 digits your authenticator app shows.');
      input.focus();
      return;
    }
    verify.disabled = true;
    try {
      await submit(code, remember ? remember.input.checked : false);
    } catch (err) {
      showError(box, err, [verify]);
      if (err.code !== 'too_many_attempts') verify.disabled = false;
      input.select();
    }
  });
  return { form, input };
}

// The recovery codes: copy, download, "I have saved these codes", Continue.
export function codesPanel(codes, onContinue) {
  const status = alertBox();
  const text = `MSPbots recovery codes\n\n${codes.join('\n')}\n`;
  const saved = checkbox('I have saved these codes');
  const cont = button('Continue', onContinue, 'primary', { disabled: true });
  saved.input.addEventListener('change', () => { cont.disabled = !saved.input.checked; });
  const download = h('a', {
    class: 'button secondary', download: 'mspbots-recovery-codes.txt',
    href: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`,
  }, 'Download codes');
  return h('div', {},
    h('h2', { text: 'Save your recovery codes' }),
    h('p', { text: 'If you lose your phone or your passkey, each of these codes signs you in once. They are shown only now: keep them somewhere safe.' }),
    h('ul', { class: 'codes', 'aria-label': 'Recovery codes' }, codes.map((c) => h('li', { text: c }))),
    h('div', { class: 'actions' }, copyButton('Copy codes', () => text, status), download),
    status, saved.wrap,
    h('div', { class: 'actions' }, cont));
}

export async function setup(ctx) {
  const title = () => h('h1', { text: 'Set Up Authentication' });
  let material;
  try {
    material = await call('POST', `/v1/logins/${ctx.loginId}/totp-enrollment`, ctx.mfaToken, {});
  } catch (err) {
    fail(ctx, err);
    return;
  }
  const days = ctx.login.remember_device_days || 0;
  const stepTwo = () => {
    const { form, input } = codePanel(async (code, remember) => {
      const body = { code };
      if (remember) body.remember_device = true;
      try {
        const res = await call('POST', `/v1/logins/${ctx.loginId}/totp-enrollment/confirm`, ctx.mfaToken, body);
        mount(card(title(), codesPanel(res.recovery_codes || [], () => finish(ctx, res))));
      } catch (err) {
        if (err.code === 'unauthenticated' || err.code === 'not_found') fail(ctx, err);
        else throw err;
      }
    }, days);
    mount(card(title(), h('p', { text: 'Step 2 of 2' }), form));
    input.focus();
  };
  const allowed = ctx.login.allowed_factor_types || ['totp'];
  let passkey = null;
  const box = alertBox();
  if (allowed.includes('webauthn') && ctx.login.webauthn_available && passkeysUsable()) {
    passkey = framed()
      ? h('p', { class: 'hint', text: 'To use a passkey or security key instead, set up 2FA here, then add one on your Security page.' })
      : linkButton('Use a passkey or security key instead', async () => {
        try {
          await enrollPasskeyAtLogin(ctx);
        } catch (err) {
          if (err.code === 'unauthenticated' || err.code === 'not_found') fail(ctx, err);
          else showError(box, err);
        }
      });
  }
  mount(card(title(), h('p', { text: 'Step 1 of 2' }), qrPanel(material, stepTwo), box, passkey));
}
