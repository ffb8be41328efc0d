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

/**
 * The shell both web UIs share: a page is either signed out (its sign-in page) or running one
 * session for one token. `showSignIn({ error, submit })` draws the sign-in page; `submit(token)`
 * keeps the token and starts a session. `createSession(token, shell)` returns something with
 * `stop()`; a session calls `shell.refused(message)` when the server refuses its token, and the page
 * calls `shell.signOut()` for a sign-out button. Starts the page as `bootWithToken` does.
 */
export function tokenShell({ storage, key, showSignIn, createSession }) {
  let session;
  const shell = {
    signIn(error) {
      session?.stop();
      session = undefined;
      showSignIn({
        error,
        submit(token) {
          storage.setItem(key, token);
          shell.start(token);
        },
      });
    },
    start(token) {
      session?.stop();
      session = createSession(token, shell);
    },
    /** The server refused the token: forget it and ask for another. */
    refused(message) {
      storage.removeItem(key);
      shell.signIn(message);
    },
    signOut() {
      storage.removeItem(key);
      shell.signIn();
    },
  };
  bootWithToken({ storage, key, start: shell.start, signIn: shell.signIn });
  return shell;
}
