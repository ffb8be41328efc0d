import { h, setChildren } from '/kit/dom.js';

/**
 * The sign-in form. `onSubmit(token)` is called with a trimmed token that can travel in an HTTP
 * header and a WebSocket subprotocol (printable ASCII without spaces).
 */
export function renderLogin(root, { error, onSubmit }) {
  const input = h('input', {
    id: 'admin-token',
    name: 'token',
    type: 'password',
    autocomplete: 'current-password',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'admin-token-help' + (error ? ' login-error' : ''),
    'aria-invalid': error ? 'true' : null,
  });
  const errorBox = h('p', { id: 'login-error', class: 'error', role: 'alert' }, error ?? '');
  if (!error) errorBox.hidden = true;
  const form = h(
    'form',
    {
      class: 'login-form',
      novalidate: true,
      onSubmit(event) {
        event.preventDefault();
        const token = input.value.trim();
        if (!/^[\x21-\x7e]+$/.test(token)) {
          errorBox.hidden = false;
          errorBox.textContent = token ? 'The token contains spaces or characters a token never has; paste it exactly as printed.' : 'Enter the admin token.';
          input.setAttribute('aria-invalid', 'true');
          input.focus();
          return;
        }
        onSubmit(token);
      },
    },
    h('label', { for: 'admin-token', text: 'Admin token' }),
    input,
    h(
      'p',
      { id: 'admin-token-help', class: 'hint' },
      // The launcher that started this studio says where its token is (npm start: a file).
      document.querySelector('meta[name="studio-sign-in-hint"]')?.getAttribute('content') || 'The studio prints the token and a dashboard link with it when it first starts.',
      ' Lost it? Run ',
      h('code', { text: 'npx studio admin-token' }),
      ' for a new one.',
    ),
    errorBox,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  );
  setChildren(root, h('section', { class: 'login panel', 'aria-labelledby': 'login-title' }, h('h1', { id: 'login-title', text: 'Sign in to the studio' }), form));
  input.focus();
}
