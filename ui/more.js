// "Load more": an API listing (users, audit events) read one page at a time by its next_cursor.
import { h, button } from './dom.js';
import { call, showError } from './api.js';

// Reads the first page of path?q into container (render: item → node) and returns what goes
// under it: how many are shown and, while the API has a next page, a "Load more" button.
// nouns: [one, many], e.g. ['user', 'users'].
export async function paged(ctx, path, q, container, render, nouns, box) {
  const noun = nouns[1];
  let next = null;
  let shown = 0;
  const status = h('p', { class: 'hint', role: 'status', tabindex: '-1' });
  const more = button('Load more', null, 'secondary', { 'aria-label': `Load more ${noun}` });
  const load = async (cursor) => {
    const params = new URLSearchParams(q);
    if (cursor) params.set('cursor', cursor);
    const page = await call('GET', `${path}?${params}`, ctx.accessToken);
    const items = page.items || [];
    container.append(...items.map(render));
    shown += items.length;
    next = page.next_cursor || null;
    status.textContent = `${shown} ${shown === 1 ? nouns[0] : noun} shown${next ? ', more to load.' : '.'}`;
    more.hidden = !next;
  };
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      await load(next);
    } catch (err) {
      showError(box, err);
    }
    more.disabled = false;
    // The button goes away with the last page: keep the keyboard where the list ends.
    if (more.hidden) status.focus();
  });
  await load(null);
  return h('div', {}, status, h('div', { class: 'actions' }, more));
}
