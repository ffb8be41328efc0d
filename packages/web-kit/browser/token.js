// The bearer token a page signs in with. A `#token=…` link (printed by the server or opened by a
// CLI) signs in, and the token leaves the address bar and the history, so a copied link does not
// carry it.

/**
 * Start the page: `start(token)` with the stored token (or one from a `#token=` link), else
 * `signIn()`. A `#token=` link opened later in the same tab starts a new session with it.
 * `storage` is localStorage or sessionStorage, `key` the entry the token is kept under.
 */
export function bootWithToken({ storage, key, start, signIn }) {
  takeTokenFromUrl(storage, key);
  const token = storage.getItem(key);
  if (token) start(token);
  else signIn();
  window.addEventListener('hashchange', () => {
    if (!new URLSearchParams(location.hash.slice(1)).has('token')) return;
    takeTokenFromUrl(storage, key);
    const fresh = storage.getItem(key);
    if (fresh) start(fresh);
  });
}

function takeTokenFromUrl(storage, key) {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token === null) return;
  history.replaceState(null, '', location.pathname + location.search);
  if (token.trim()) storage.setItem(key, token.trim());
}
