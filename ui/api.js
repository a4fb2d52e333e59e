// Calls to the service's JSON API (same origin) and a plain sentence for each error code.

export class ApiError extends Error {
  constructor(status, code, detail, retryAfter) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export async function call(method, path, token, body, headers = {}) {
  const init = { method, headers: { ...headers }, credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-store' };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'network');
  }
  const etag = res.headers.get('ETag');
  if (res.status === 204) return { etag };
  const text = await res.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = {}; }
  if (!res.ok) {
    const retry = parseInt(res.headers.get('Retry-After') || '', 10);
    throw new ApiError(res.status, data.code || 'internal', data.detail, Number.isFinite(retry) ? retry : null);
  }
  if (etag) Object.defineProperty(data, 'etag', { value: etag, enumerable: false });
  return data;
}

const SENTENCES = {
  network: 'The service could not be reached. Check your connection and try again.',
  invalid_request: 'That was not accepted. A code from your authenticator app has exactly 6 digits.',
  invalid_code: 'That code is not right. Check the code in your authenticator app and try again.',
  code_reused: 'That code was already used. Wait for the next code in your app (it changes every 30 seconds) and enter it.',
  unauthenticated: 'Your session has ended. Sign in again.',
  forbidden: 'You are not allowed to do this.',
  mfa_required_for_admin: 'Only an administrator who has set up 2FA can change these settings. Set up 2FA first.',
  step_up_required: 'Please confirm it is you with your authenticator app or passkey, then try again.',
  not_found: 'This item no longer exists. Reload the page.',
  method_not_allowed: 'This action is not available.',
  invalid_state: 'This step is not possible right now. Start again from the beginning.',
  mfa_enforced: 'Your organisation requires 2FA, so you cannot remove your last authenticator.',
  precondition_failed: 'Someone else changed these settings in the meantime. They have been reloaded; make your change again.',
  precondition_required: 'These settings must be reloaded before they can be changed.',
  payload_too_large: 'That is too long.',
  unsupported_media_type: 'The page sent something the service does not understand. Reload the page.',
  too_many_attempts: 'Too many attempts. Wait before trying again.',
  unavailable: 'The service is busy or down for a moment. Try again shortly.',
  internal: 'Something went wrong on our side. Try again; if it keeps happening, contact your administrator.',
  factor_limit: 'You already have as many authenticators as your organisation allows. Remove one first.',
  name_taken: 'You already use that name for another authenticator. Pick a different name.',
  invalid_credential: 'Your passkey or security key was not accepted. Try again, or use another way to sign in.',
  webauthn_unavailable: 'Passkeys are not available here. Use an authenticator app instead.',
  factor_type_not_allowed: 'Your organisation does not allow this kind of authenticator.',
  webhook_limit: 'This organisation already has the most webhooks allowed.',
};

export function sentence(err) {
  const code = err instanceof ApiError ? err.code : 'internal';
  return SENTENCES[code] || SENTENCES.internal;
}

export const allCodes = Object.keys(SENTENCES);

let timer = null;

// Shows err's sentence in box (role="alert"). For too_many_attempts a countdown from
// Retry-After, with the given controls disabled until it ends.
export function showError(box, err, controls = []) {
  if (timer) { clearInterval(timer); timer = null; }
  box.className = 'alert error';
  box.hidden = false;
  if (err instanceof ApiError && err.code === 'too_many_attempts' && err.retryAfter) {
    let left = err.retryAfter;
    const render = () => {
      box.textContent = `Too many attempts. Try again in ${left} s.`;
    };
    controls.forEach((c) => { c.disabled = true; });
    render();
    timer = setInterval(() => {
      left -= 1;
      if (left <= 0) {
        clearInterval(timer);
        timer = null;
        box.textContent = 'You can try again now.';
        controls.forEach((c) => { c.disabled = false; });
      } else {
        // Only the number changes; the alert was announced once.
        render();
      }
    }, 1000);
    return;
  }
  box.textContent = sentence(err);
}
