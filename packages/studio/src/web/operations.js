// The operator's second page: the results gallery, API tokens, webhooks, storage and the API
// reference. It signs in with the dashboard's stored admin token (or a #token= link).
import { API_BASE } from './api.js';
import { ApiError, createSender } from '/kit/api.js';
import { h, setChildren } from '/kit/dom.js';
import { createNotice } from '/kit/messages.js';
import { bootWithToken } from '/kit/token.js';
import { renderApiReference, renderStorage } from './views/ops-info.js';
import { renderGallery } from './views/gallery.js';
import { renderTokens, renderWebhooks } from './views/integrations.js';

const TOKEN_KEY = 'studio.adminToken';
const main = document.getElementById('main');
const { show: showNotice, hide: hideNotice } = createNotice(document.getElementById('notice'));
const VIEWS = { gallery: renderGallery, tokens: renderTokens, webhooks: renderWebhooks, storage: renderStorage, api: renderApiReference };

function start(token) {
  const send = createSender({
    base: API_BASE,
    token: () => token,
    onUnauthorized: () => {
      localStorage.removeItem(TOKEN_KEY);
      signIn('The studio refused the stored token. Sign in on the dashboard again.');
    },
    unreachable: (error) => new ApiError(0, 'network', `The studio could not be reached (${error.message}). Check that it is running.`),
  });
  const api = { send, json: async (method, path, options) => (await send(method, path, options)).json() };
  const show = async () => {
    const tab = VIEWS[location.hash.slice(1)] ? location.hash.slice(1) : 'gallery';
    for (const link of document.querySelectorAll('[data-tab]')) {
      if (link.dataset.tab === tab) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    hideNotice();
    const root = h('div', { class: 'ops' });
    setChildren(main, root);
    try {
      await VIEWS[tab](root, { api, notify: showNotice });
    } catch (error) {
      if (error instanceof ApiError) showNotice(error.message);
      else throw error;
    }
  };
  window.addEventListener('hashchange', () => void show());
  void show();
}

function signIn(message) {
  setChildren(main, h('section', { class: 'panel ops' }, h('p', { text: message ?? 'Sign in on the dashboard first; this page uses the same token.' }), h('a', { href: '/', text: 'Open the dashboard' })));
}

bootWithToken({ storage: localStorage, key: TOKEN_KEY, start, signIn: () => signIn() });
