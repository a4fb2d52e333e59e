// "Settings > System > Security" (view=admin): the 2-factor Authentication switch, the
// policy, the tenant summary, the users with reset/unlock, and the audit trail.
import { h, mount, card, button, alertBox, notice, field, checkbox, formatDate, nextId } from './dom.js';
import { call, showError } from './api.js';
import { confirmIdentity } from './reauth.js';
import { paged } from './more.js';

const FILTERS = [['', 'All users'], ['enrolled', 'Set up'], ['not_enrolled', 'Not set up'], ['in_grace', 'In grace period'], ['overdue', 'Overdue']];
const SUMMARY = [['users', 'Users'], ['enrolled', 'Set up 2FA'], ['not_enrolled', 'Not set up'], ['exempt', 'Exempt (Microsoft)'],
  ['in_grace', 'In grace period'], ['overdue', 'Overdue'], ['locked', 'Locked out now'], ['remembered_devices', 'Remembered browsers']];

async function putPolicy(ctx, box, changes) {
  const headers = await confirmIdentity(ctx);
  if (!headers) return false;
  const base = `/v1/tenants/${encodeURIComponent(ctx.tenant)}`;
  try {
    ctx.policy = await call('PUT', `${base}/policy`, ctx.accessToken, changes, { ...headers, 'If-Match': ctx.policy.etag });
    return true;
  } catch (err) {
    if (err.code === 'precondition_failed') ctx.policy = await call('GET', `${base}/policy`, ctx.accessToken);
    showError(box, err);
    return false;
  }
}

function toggle(ctx, box) {
  const on = ctx.policy.enforce_mfa;
  const labelId = nextId('switch');
  const sw = h('button', { type: 'button', role: 'switch', class: `switch${on ? ' on' : ''}`, 'aria-checked': String(on), 'aria-labelledby': labelId },
    h('span', { class: 'knob' }));
  sw.addEventListener('click', async () => {
    if (await putPolicy(ctx, box, { enforce_mfa: !on })) {
      ctx.flash = ctx.policy.enforce_mfa ? '2-factor Authentication is on.' : '2-factor Authentication is off.';
      admin(ctx);
    }
  });
  return h('div', { class: 'switch-row' }, h('span', { id: labelId, class: 'switch-label', text: '2-factor Authentication' }), sw,
    h('span', { class: 'state', text: on ? 'On' : 'Off' }));
}

function policyForm(ctx, box) {
  const p = ctx.policy;
  const boxes = (name, values, labels) => values.map((v, i) => {
    const c = checkbox(labels[i], { name, value: v, checked: (p[name] || []).includes(v) });
    return c;
  });
  const surfaces = boxes('surfaces', ['app', 'portal'], ['MSPbots app', 'Client Portal']);
  const exempt = boxes('exempt_identity_providers', ['microsoft'], ['Microsoft users are exempt']);
  const types = p.allowed_factor_types ? boxes('allowed_factor_types', ['totp', 'webauthn'], ['Authenticator apps', 'Passkeys and security keys']) : [];
  const num = (label, key, max) => field(label, { type: 'number', min: key === 'max_factors_per_user' ? '1' : '0', max: String(max), value: String(p[key] ?? 0), inputmode: 'numeric' });
  const maxF = num('Authenticators per user (1–10)', 'max_factors_per_user', 10);
  const remember = num('Remember a browser for this many days (0 = never)', 'remember_device_days', 90);
  const grace = num('Days users may postpone setup (0 = at once)', 'enrollment_grace_days', 90);
  const issuer = field('Name shown in authenticator apps', { value: p.issuer || '', maxlength: '64' });
  let uv = null;
  if (p.webauthn_user_verification) {
    const id = nextId('uv');
    const sel = h('select', { id }, [['preferred', 'Preferred'], ['required', 'Required']].map(([v, t]) => h('option', { value: v, selected: p.webauthn_user_verification === v }, t)));
    uv = { wrap: h('div', { class: 'field' }, h('label', { for: id, text: 'Passkey user verification' }), sel), input: sel };
  }
  const picked = (list) => list.filter((c) => c.input.checked).map((c) => c.input.value);
  const form = h('form', { novalidate: true },
    h('fieldset', {}, h('legend', { text: 'Where 2FA applies' }), surfaces.map((c) => c.wrap)),
    h('fieldset', {}, h('legend', { text: 'Exemptions' }), exempt.map((c) => c.wrap)),
    types.length ? h('fieldset', {}, h('legend', { text: 'Allowed kinds of authenticator' }), types.map((c) => c.wrap)) : null,
    uv && uv.wrap, maxF.wrap, remember.wrap, grace.wrap, issuer.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save policy')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {
      surfaces: picked(surfaces), exempt_identity_providers: picked(exempt), issuer: issuer.input.value,
      max_factors_per_user: Number(maxF.input.value), remember_device_days: Number(remember.input.value),
      enrollment_grace_days: Number(grace.input.value),
    };
    if (types.length) body.allowed_factor_types = picked(types);
    if (uv) body.webauthn_user_verification = uv.input.value;
    if (await putPolicy(ctx, box, body)) { ctx.flash = 'Policy saved.'; admin(ctx); }
  });
  return form;
}

function userRow(ctx, u, box) {
  const base = `/v1/tenants/${encodeURIComponent(ctx.tenant)}/users/${encodeURIComponent(u.user_id)}`;
  const act = (label, method, path, msg, cls) => button(label, async () => {
    const headers = await confirmIdentity(ctx);
    if (!headers) return;
    try {
      await call(method, path, ctx.accessToken, method === 'POST' ? {} : undefined, headers);
      ctx.flash = msg;
      admin(ctx);
    } catch (err) { showError(box, err); }
  }, cls, { 'aria-label': `${label} for ${u.email}` });
  const locked = u.locked_until && new Date(u.locked_until) > new Date();
  const state = u.mfa_enrolled ? `Set up (${u.mfa_factors ?? 1})` : (u.grace_ends_at ? `Until ${formatDate(u.grace_ends_at)}` : 'Not set up');
  return h('tr', {},
    h('td', { text: u.email }), h('td', { text: u.identity_provider }), h('td', { text: state + (locked ? ', locked' : '') }),
    h('td', { text: formatDate(u.last_login_at) }),
    h('td', { class: 'row-actions' },
      u.mfa_enrolled ? act('Reset 2FA', 'DELETE', `${base}/totp`, `2FA of ${u.email} was reset.`, 'danger') : null,
      locked ? act('Unlock', 'POST', `${base}/unlock`, `${u.email} was unlocked.`, 'secondary') : null));
}

async function users(ctx, box) {
  const id = nextId('filter');
  const sel = h('select', { id }, FILTERS.map(([v, t]) => h('option', { value: v, selected: (ctx.filter || '') === v }, t)));
  sel.addEventListener('change', () => { ctx.filter = sel.value; admin(ctx); });
  const q = { limit: '50' };
  if (ctx.filter) q.mfa = ctx.filter;
  const rows = h('tbody');
  const more = await paged(ctx, `/v1/tenants/${encodeURIComponent(ctx.tenant)}/users`, q, rows, (u) => userRow(ctx, u, box), ['user', 'users'], box);
  return card(h('h2', { text: 'Users' }), h('div', { class: 'field' }, h('label', { for: id, text: 'Show' }), sel),
    h('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Users and their 2FA' }, h('table', {}, h('caption', { class: 'sr-only', text: 'Users and their 2FA' }),
      h('thead', {}, h('tr', {}, ['E-mail', 'Sign-in', '2FA', 'Last sign-in', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
      rows)), more);
}

async function audit(ctx, box) {
  const list = h('ul', { class: 'list audit' });
  const more = await paged(ctx, `/v1/tenants/${encodeURIComponent(ctx.tenant)}/audit-events`, { limit: '20' }, list, (e) => h('li', {},
    h('span', { class: 'mono', text: e.type }), h('span', { text: ` ${e.user_id || ''} — ${formatDate(e.at)}` })), ['event', 'events'], box);
  return card(h('h2', { text: 'Audit trail' }), list, more);
}

export async function admin(ctx) {
  const box = alertBox();
  const title = [h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs', text: 'Settings › System › Security' }), h('h1', { text: 'Security' })];
  try {
    if (!ctx.tenant) ctx.tenant = (await call('GET', '/v1/me', ctx.accessToken)).tenant_id;
    const base = `/v1/tenants/${encodeURIComponent(ctx.tenant)}`;
    const [policy, summary, mine] = await Promise.all([call('GET', `${base}/policy`, ctx.accessToken),
      call('GET', `${base}/mfa-summary`, ctx.accessToken), call('GET', '/v1/me/factors', ctx.accessToken)]);
    // Which proofs "Confirm it's you" offers: an admin may hold only a passkey.
    const active = (mine.items || []).filter((f) => f.status === 'active');
    ctx.hasPasskey = active.some((f) => f.type === 'webauthn');
    ctx.hasApp = active.some((f) => f.type !== 'webauthn');
    ctx.policy = policy;
    if (ctx.flash) { notice(box, ctx.flash, 'ok'); ctx.flash = null; }
    const sum = card(h('h2', { text: 'Summary' }), h('dl', { class: 'summary' }, SUMMARY.map(([k, t]) => h('div', {}, h('dt', { text: t }), h('dd', { text: String(summary[k] ?? 0) })))));
    mount(card(title, box, toggle(ctx, box), h('p', { class: 'hint', text: 'When on, every user who signs in with an MSPbots password must set up an authenticator app.' })),
      card(h('h2', { text: 'Policy' }), policyForm(ctx, box)), sum, await users(ctx, box), await audit(ctx, box));
  } catch (err) {
    mount(card(title, box));
    showError(box, err);
  }
}
