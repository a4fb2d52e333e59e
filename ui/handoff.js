// Hand-off in (the URL fragment, cleared at once) and out (postMessage to an allowed parent,
// or the browser sent back to an allowed return_to). docs/API.md §18, §21.

function origins(name) {
  const el = document.querySelector(`meta[name="${name}"]`);
  return ((el && el.content) || '').split(/\s+/).filter(Boolean);
}

export const embedOrigins = origins('mspbots-mfa-embed-origins');
export const returnOrigins = origins('mspbots-mfa-return-origins');

// Reads the fragment's form-urlencoded values and removes them from the address bar and
// the history entry before anything else runs. The values live in memory only.
export function takeFragment() {
  const raw = window.location.hash.replace(/^#/, '');
  if (raw) window.history.replaceState(null, '', window.location.pathname + window.location.search);
  return Object.fromEntries(new URLSearchParams(raw));
}

export function framed() {
  try {
    return window.parent !== window;
  } catch {
    return true;
  }
}

function allowedReturn(returnTo) {
  if (!returnTo) return null;
  try {
    const url = new URL(returnTo);
    return returnOrigins.includes(url.origin) ? url : null;
  } catch {
    return null;
  }
}

// Sends the message out. Returns 'posted', 'returned' or 'none' (the page then shows the
// result and goes nowhere).
export function handOff(message, returnTo) {
  if (framed() && embedOrigins.length) {
    // Once per allowed origin, never '*': only the real parent's origin receives it.
    for (const origin of embedOrigins) window.parent.postMessage(message, origin);
    return 'posted';
  }
  const url = allowedReturn(returnTo);
  if (url) {
    const values = new URLSearchParams();
    for (const [k, v] of Object.entries(message)) {
      if (v !== undefined && v !== null) values.set(k, String(v));
    }
    url.hash = values.toString();
    window.location.assign(url.toString());
    return 'returned';
  }
  return 'none';
}
