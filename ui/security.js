// "Security" (view=security): authenticators, recovery codes, remembered browsers.
import { h, mount, card, button, alertBox, notice, field, formatDate } from './dom.js';
import { call, showError } from './api.js';
import { confirmIdentity } from './reauth.js';
import { qrPanel, codePanel, codesPanel } from './setup.js';
import { passkeysUsable, addPasskey } from './passkey.js';
import { framed } from './handoff.js';

const TYPE = { totp: 'Authenticator app', webauthn: 'Passkey or security key' };

// Runs a sensitive action after "Confirm it's you"; errors go to box. Adding the first
// factor needs no step-up (§16): there is nothing to confirm with yet.
async function sensitive(ctx, box, action, first = false) {
  const headers = first ? {} : await confirmIdentity(ctx);
  if (!headers) return;
  try {
    await action(headers);
  } catch (err) {
    showError(box, err);
  }
}

function factorRow(ctx, f, box) {
  const nameCell = h('td', { text: f.name });
  const rename = button('Rename', () => {
    const { wrap, input } = field(`New name for ${f.name}`, { value: f.name, maxlength: '64' });
    const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
    const form = h('form', { class: 'inline' }, wrap, save, button('Cancel', () => security(ctx)));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await call('PATCH', `/v1/me/factors/${f.factor_id}`, ctx.accessToken, { name: input.value });
        ctx.flash = 'Renamed.';
        security(ctx);
      } catch (err) { showError(box, err); }
    });
    nameCell.replaceChildren(form);
    input.focus();
  }, 'secondary', { 'aria-label': `Rename ${f.name}` });
  const remove = button('Remove', () => sensitive(ctx, box, async (headers) => {
    await call('DELETE', `/v1/me/factors/${f.factor_id}`, ctx.accessToken, undefined, headers);
    ctx.flash = `${f.name} was removed.`;
    security(ctx);
  }), 'danger', { 'aria-label': `Remove ${f.name}` });
  return h('tr', {},
    nameCell,
    h('td', { text: `${TYPE[f.type] || f.type}${f.status === 'pending' ? ' (not finished)' : ''}` }),
    h('td', { text: formatDate(f.activated_at || f.created_at) }),
    h('td', { text: formatDate(f.last_used_at) }),
    h('td', { class: 'row-actions' }, rename, remove));
}

function addApp(ctx, box, hasActive) {
  const go = async (headers) => {
    const material = await call('POST', '/v1/me/factors', ctx.accessToken, {}, headers);
    const title = h('h1', { text: 'Add an authenticator app' });
    const stepTwo = () => {
      const { form, input } = codePanel(async (code) => {
        const res = await call('POST', `/v1/me/factors/${material.factor_id}/confirm`, ctx.accessToken, { code });
        ctx.accessToken = res.access_token || ctx.accessToken;
        // The new token proves a code just now: it is its own step-up for a few minutes.
        ctx.freshUntil = Date.now() + 4 * 60 * 1000;
        ctx.flash = `${material.name} was added.`;
        if (res.recovery_codes) mount(card(title, codesPanel(res.recovery_codes, () => security(ctx))));
        else security(ctx);
      }, 0);
      mount(card(title, form, button('Cancel', () => security(ctx))));
      input.focus();
    };
    mount(card(title, qrPanel(material, stepTwo), button('Cancel', () => security(ctx))));
  };
  sensitive(ctx, box, go, !hasActive);
}

export async function security(ctx) {
  let me; let factors; let devices;
  try {
    [me, factors, devices] = await Promise.all([
      call('GET', '/v1/me', ctx.accessToken),
      call('GET', '/v1/me/factors', ctx.accessToken),
      call('GET', '/v1/me/devices', ctx.accessToken),
    ]);
  } catch (err) {
    const box = alertBox();
    mount(card(h('h1', { text: 'Security' }), box));
    showError(box, err);
    return;
  }
  const box = alertBox();
  if (ctx.flash) { notice(box, ctx.flash, 'ok'); ctx.flash = null; }
  const items = factors.items || [];
  const active = items.some((f) => f.status === 'active');
  ctx.hasPasskey = items.some((f) => f.type === 'webauthn' && f.status === 'active');
  ctx.hasApp = items.some((f) => f.type !== 'webauthn' && f.status === 'active');
  // Passkeys only where the service says this tenant and surface can have them (§16, §21).
  const tenant = me.tenant || {};
  const canPasskey = (tenant.allowed_factor_types || []).includes('webauthn')
    && tenant.webauthn_available === true && passkeysUsable() && !framed();
  const addButtons = [button('Add an authenticator app', () => addApp(ctx, box, active), 'primary')];
  if (canPasskey) {
    addButtons.push(button('Add a passkey', () => sensitive(ctx, box, async (headers) => {
      const res = await addPasskey(ctx.accessToken, headers);
      ctx.accessToken = res.access_token || ctx.accessToken;
      ctx.flash = 'Passkey added.';
      if (res.recovery_codes) mount(card(h('h1', { text: 'Passkey added' }), codesPanel(res.recovery_codes, () => security(ctx))));
      else security(ctx);
    }, !active)));
  }
  const table = items.length
    ? h('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Your authenticators' }, h('table', {},
      h('caption', { class: 'sr-only', text: 'Your authenticators' }),
      h('thead', {}, h('tr', {}, ['Name', 'Type', 'Added', 'Last used', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, items.map((f) => factorRow(ctx, f, box)))))
    : h('p', { text: 'You have no authenticator yet.' });
  const remaining = me.mfa ? me.mfa.recovery_codes_remaining : null;
  const codes = card(h('h2', { text: 'Recovery codes' }),
    h('p', { text: active ? `${remaining ?? 0} unused recovery codes left.` : 'You get recovery codes when you add your first authenticator.' }),
    active ? button('Make new recovery codes', () => sensitive(ctx, box, async (headers) => {
      const res = await call('POST', '/v1/me/recovery-codes', ctx.accessToken, {}, headers);
      mount(card(h('h1', { text: 'New recovery codes' }), h('p', { text: 'Your old recovery codes no longer work.' }),
        codesPanel(res.recovery_codes, () => security(ctx))));
    })) : null);
  const devs = devices.items || [];
  const revoke = async (path, msg) => {
    try {
      await call('DELETE', path, ctx.accessToken);
      ctx.flash = msg;
      security(ctx);
    } catch (err) { showError(box, err); }
  };
  const browsers = card(h('h2', { text: 'Remembered browsers' }),
    devs.length ? h('ul', { class: 'list' }, devs.map((d) => h('li', {},
      h('span', { text: `${d.name} — ${d.surface === 'portal' ? 'Client Portal' : 'MSPbots app'}, until ${formatDate(d.expires_at)}` }),
      button('Revoke', () => revoke(`/v1/me/devices/${d.device_id}`, `${d.name} must enter a code again.`), 'secondary', { 'aria-label': `Revoke ${d.name}` }))))
      : h('p', { text: 'No browser is remembered.' }),
    devs.length ? button('Revoke all', () => revoke('/v1/me/devices', 'Every browser must enter a code again.'), 'danger') : null);
  mount(
    card(h('h1', { text: 'Security' }), h('p', { class: 'hint', text: me.email }), box,
      h('h2', { text: 'Authenticators' }), table, h('div', { class: 'actions' }, addButtons)),
    codes, browsers,
  );
}
