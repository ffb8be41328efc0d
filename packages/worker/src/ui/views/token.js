import { h, setChildren } from '/kit/dom.js';

/**
 * Shown without a token, or when the daemon refused the token: how to get in (`studio-worker ui`
 * opens this page with the token), and a field to paste the token from local-api.json.
 */
export function renderTokenPage(main, { error, onSubmit }) {
  // The daemon that served this page names its own config dir and how to open the UI from a terminal.
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') || '';
  const configDir = meta('studio-worker-config-dir');
  const uiCommand = meta('studio-worker-ui-command') || 'studio-worker ui';
  const input = h('input', { id: 'token-input', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': error ? 'token-help token-error' : 'token-help' });
  const form = h(
    'form',
    {
      class: 'token-form',
      onSubmit(event) {
        event.preventDefault();
        const token = input.value.trim();
        if (token) onSubmit(token);
        else input.focus();
      },
    },
    h('label', { for: 'token-input', text: 'Local API token' }),
    input,
    h('button', { type: 'submit', class: 'primary' }, 'Open'),
  );
  setChildren(
    main,
    h(
      'section',
      { class: 'panel token-page', 'aria-labelledby': 'token-title' },
      h('h1', { id: 'token-title', tabindex: '-1', text: 'Open the worker’s web UI' }),
      error ? h('p', { class: 'error', id: 'token-error', role: 'alert' }, h('strong', { text: 'The daemon refused the token: ' }), error) : null,
      h(
        'p',
        { id: 'token-help' },
        'This page shows and controls the studio-worker daemon on this computer. It needs the daemon’s local API token. The easy way: run ',
        h('code', { id: 'token-ui-command', text: uiCommand }),
        ' in a terminal; it starts the daemon if needed and opens this page with the token.',
      ),
      h(
        'p',
        {},
        'Or paste the ',
        h('code', { text: 'token' }),
        ' field of ',
        h('code', { text: 'local-api.json' }),
        ' in the worker’s config folder',
        ...(configDir
          ? [': ', h('code', { id: 'token-config-dir', text: configDir }), '.']
          : [
              ': ',
              h('code', { text: '~/.config/studio-worker/' }),
              ' on Linux, ',
              h('code', { text: '~/Library/Application Support/studio-worker/' }),
              ' on macOS, ',
              h('code', { text: '%APPDATA%\\studio-worker\\' }),
              ' on Windows.',
            ]),
      ),
      form,
      h('p', { class: 'hint', text: 'The token stays in this browser tab only (session storage) and is sent to this computer’s daemon, nowhere else.' }),
    ),
  );
  main.querySelector('#token-title').focus();
}
